"""A run records which code produced it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import torch

import scns
from scns.provenance import code_provenance, source_digest


def test_provenance_names_versions_and_the_checkouts_commit() -> None:
    info = code_provenance()
    assert info["scns_version"] == scns.__version__ and info["torch_version"] == torch.__version__
    package_dir = Path(scns.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package_dir, capture_output=True, text=True)
    if head.returncode == 0:
        assert info["git_commit"] == head.stdout.strip() and isinstance(info["git_dirty"], bool)
    else:  # an installed copy outside a checkout
        assert info["git_commit"] is None and info["git_dirty"] is None


def test_provenance_records_the_digest_of_the_installed_source() -> None:
    package_dir = Path(scns.__file__).resolve().parent
    assert code_provenance()["source_sha256"] == source_digest(package_dir)


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_source_digest_is_a_sha256_over_sorted_paths_and_contents(tmp_path: Path) -> None:
    files = {"b.py": "x = 2\n", "a.py": "x = 1\n", "sub/c.py": "y = 3\n", "notes.txt": "ignored"}
    package = _write_package(tmp_path / "pkg", files)
    expected = hashlib.sha256()
    for name in ["a.py", "b.py", "sub/c.py"]:  # sorted paths, Python files only
        expected.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    assert source_digest(package) == expected.hexdigest()


def test_source_digest_changes_with_an_edit_a_rename_or_a_new_file(tmp_path: Path) -> None:
    base = {"a.py": "x = 1\n", "b.py": "x = 2\n"}
    digests = {
        "base": source_digest(_write_package(tmp_path / "base", base)),
        "same": source_digest(_write_package(tmp_path / "same", base)),
        "edit": source_digest(_write_package(tmp_path / "edit", {**base, "b.py": "x = 3\n"})),
        "rename": source_digest(_write_package(tmp_path / "rename", {"a.py": "x = 1\n", "c.py": "x = 2\n"})),
        "added": source_digest(_write_package(tmp_path / "added", {**base, "d.py": ""})),
        "text": source_digest(_write_package(tmp_path / "text", {**base, "README.txt": "more"})),
    }
    assert digests["base"] == digests["same"] == digests["text"]
    assert len({digests[k] for k in ("base", "edit", "rename", "added")}) == 4
