"""Which code produced a result: package and torch versions, the git commit of a source checkout, and a
digest of the package source that identifies the code where git cannot (an installed wheel, a copied
tree, uncommitted edits)."""

from __future__ import annotations

import functools
import hashlib
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


def source_digest(package_dir: Path) -> str:
    """SHA-256 over the package's Python files: each file's path relative to ``package_dir`` and its
    bytes, in sorted path order, so the same source gives the same digest on any machine."""
    digest = hashlib.sha256()
    files = {path.relative_to(package_dir).as_posix(): path for path in package_dir.rglob("*.py")}
    for name in sorted(files):  # by the POSIX relative path: the same order on every OS
        digest.update(name.encode() + b"\0")
        digest.update(files[name].read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_provenance() -> dict[str, Any]:
    """Versions and, when scns runs from a git checkout, its commit and whether the package source
    differs from it (``git_dirty``); the git fields are None for an installed wheel or a copied tree.
    ``source_sha256`` (see :func:`source_digest`) is always recorded."""
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
        "source_sha256": source_digest(package_dir),
    }
