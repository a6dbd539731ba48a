"""Shared test fixtures: small generated data, deterministic torch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# One intra-op thread: the tests' tensors are small, and on a shared machine a second OpenMP thread
# mostly spin-waits (it doubled the CPU time of the end-to-end tests: 23 s against 9 s for the demo's).
torch.set_num_threads(1)


@pytest.fixture
def fresh_python() -> Callable[[str], str]:
    """Runs Python code in a new interpreter (nothing imported yet) and returns what it printed: for
    checks of what an import pulls in, which the test process itself has long imported."""

    def run(code: str) -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    return run


@pytest.fixture
def refuse_data_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes loading a dataset fail the test: for checks that must reject a configuration before any
    data is read."""
    import scns.data.datasets

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("data was loaded before the configuration was validated")

    monkeypatch.setattr(scns.data.datasets, "load_dataset", refuse)
    monkeypatch.setattr("scns.train.engine.load_dataset", refuse)


@pytest.fixture
def data_dir() -> Path:
    """Real-data root from SCNS_DATA_DIR; the test is skipped when it is unset."""
    root = os.environ.get("SCNS_DATA_DIR")
    if not root:
        pytest.skip("SCNS_DATA_DIR is not set (real datasets unavailable)")
    return Path(root)
