"""A run records which code produced it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

import scns
from scns.provenance import code_provenance


def test_provenance_names_versions_and_the_checkouts_commit() -> None:
    info = code_provenance()
    assert info["scns_version"] == scns.__version__ and info["torch_version"] == torch.__version__
    package_dir = Path(scns.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package_dir, capture_output=True, text=True)
    if head.returncode == 0:
        assert info["git_commit"] == head.stdout.strip() and isinstance(info["git_dirty"], bool)
    else:  # an installed copy outside a checkout
        assert info["git_commit"] is None and info["git_dirty"] is None
