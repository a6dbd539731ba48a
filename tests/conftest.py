"""Shared test fixtures: small generated data, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One intra-op thread: the tests' tensors are small, and on a shared machine a second OpenMP thread
# mostly spin-waits (it doubled the CPU time of the end-to-end tests: 23 s against 9 s for the demo's).
torch.set_num_threads(1)


@pytest.fixture
def data_dir() -> Path:
    """Real-data root from SCNS_DATA_DIR; the test is skipped when it is unset."""
    root = os.environ.get("SCNS_DATA_DIR")
    if not root:
        pytest.skip("SCNS_DATA_DIR is not set (real datasets unavailable)")
    return Path(root)
