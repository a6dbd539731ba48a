"""The on-disk cache: hits skip compute, any key change recomputes, damaged files are not trusted."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from scns.similarity import WordVectors, class_similarity, default_cache_dir
from scns.similarity.glove import GloveSimilarity

TABLE = WordVectors(
    ["cat", "dog", "car", "van"], torch.tensor([[1.0, 0.1], [0.9, 0.3], [0.0, 1.0], [0.2, 1.0]])
)
NAMES = ["cat", "dog", "car"]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Spy on GloveSimilarity.compute: records each call's class list."""
    seen: list[list[str]] = []
    original = GloveSimilarity.compute

    def spy(self: GloveSimilarity, names: list[str]) -> torch.Tensor:
        seen.append(list(names))
        return original(self, names)

    monkeypatch.setattr(GloveSimilarity, "compute", spy)
    return seen


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*")) if directory.exists() else []


def test_default_dir_follows_env(isolated_cache: Path) -> None:
    assert default_cache_dir() == isolated_cache


def test_hit_skips_compute_and_returns_identical_matrix(calls, isolated_cache: Path) -> None:
    first = class_similarity("glove", NAMES, vectors=TABLE)
    second = class_similarity("glove", NAMES, vectors=TABLE)
    assert len(calls) == 1
    assert torch.equal(first, second)
    files = _files(isolated_cache)
    assert len(files) == 1 and files[0].name.startswith("glove-") and files[0].suffix == ".pt"


@pytest.mark.parametrize(
    "change",
    [
        {"names": ["cat", "dog", "van"]},
        {"names": ["dog", "cat", "car"]},  # order is part of the key
        {"aliases": {"car": "van"}},
        {"vectors": WordVectors(["cat", "dog", "car"], torch.eye(3)[:, :2] + 0.5)},
    ],
)
def test_key_change_recomputes(calls, change: dict) -> None:
    class_similarity("glove", NAMES, vectors=TABLE)
    names = change.pop("names", NAMES)
    options = {"vectors": TABLE, **change}
    class_similarity("glove", names, **options)
    assert len(calls) == 2


def test_explicit_cache_dir_and_no_cache(calls, tmp_path: Path, isolated_cache: Path) -> None:
    class_similarity("glove", NAMES, vectors=TABLE, cache_dir=tmp_path / "c")
    assert len(_files(tmp_path / "c")) == 1 and not _files(isolated_cache)
    class_similarity("glove", NAMES, vectors=TABLE, use_cache=False)
    class_similarity("glove", NAMES, vectors=TABLE, use_cache=False)
    assert len(calls) == 3 and not _files(isolated_cache)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip_matrix_byte", "wrong_key"])
def test_damaged_file_is_recomputed_and_overwritten(calls, isolated_cache: Path, damage: str) -> None:
    good = class_similarity("glove", NAMES, vectors=TABLE)
    (path,) = _files(isolated_cache)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a torch file" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        blob = torch.load(path, weights_only=True)
        if damage == "flip_matrix_byte":
            blob["matrix"][0, 1] += 0.25  # stored checksum no longer matches
        else:
            blob["key"] = "0" * 64
        torch.save(blob, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = class_similarity("glove", NAMES, vectors=TABLE)
    assert any("recomputing" in str(w.message) for w in caught)
    assert len(calls) == 2 and torch.equal(again, good)
    # the file was rewritten: the next call is a clean hit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        class_similarity("glove", NAMES, vectors=TABLE)
    assert len(calls) == 2
    assert [p.name for p in _files(isolated_cache)] == [path.name]  # no temp files left behind
