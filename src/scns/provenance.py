"""Which code produced a result: package and torch versions, and the git commit of a source checkout."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import scns


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None


@functools.lru_cache(maxsize=1)
def code_provenance() -> dict[str, Any]:
    """Versions and, when scns runs from a git checkout, its commit and whether the package source
    differs from it (``git_dirty``); the git fields are None for an installed wheel."""
    package_dir = Path(scns.__file__).resolve().parent
    head = _git(["rev-parse", "HEAD"], package_dir)
    commit = head.stdout.strip() if head is not None and head.returncode == 0 else None
    dirty = None
    if commit is not None:
        diff = _git(["diff", "--quiet", "HEAD", "--", "."], package_dir)
        dirty = None if diff is None else diff.returncode != 0
    return {
        "scns_version": scns.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": commit,
        "git_dirty": dirty,
    }
