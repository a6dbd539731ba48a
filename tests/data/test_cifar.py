"""CIFAR pickle loaders on generated files: pixel layout, labels, names and every error path.

The ``fake_cifar*`` fixtures (tests/data/conftest.py) return a ``FakeCifar`` record of what was written.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from scns.data import DatasetError, load_dataset


def _reference_images(rows: np.ndarray) -> np.ndarray:
    """Loop reference of the official layout: row = 1024 R, then 1024 G, then 1024 B values, row-major."""
    n = rows.shape[0]
    out = np.zeros((n, 32, 32, 3), dtype=np.uint8)
    for i in range(n):
        for ch in range(3):
            for r in range(32):
                out[i, r, :, ch] = rows[i, ch * 1024 + r * 32 : ch * 1024 + r * 32 + 32]
    return out


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_matches_written_files(fake_cifar10: Any, split: str) -> None:
    data = load_dataset("cifar10", fake_cifar10.folder.parent, split)
    assert data.name == "cifar10" and data.split == split
    assert data.images.dtype == torch.uint8 and data.images.is_contiguous()
    np.testing.assert_array_equal(data.images.numpy(), _reference_images(fake_cifar10.data[split]))
    np.testing.assert_array_equal(data.labels.numpy(), fake_cifar10.labels[split])
    assert data.labels.dtype == torch.int64
    assert data.classes == fake_cifar10.classes
    assert data.coarse_labels is None and data.coarse_classes is None
    assert len(data) == (30 if split == "train" else 6)


def test_cifar100_gives_fine_and_coarse_labels(fake_cifar100: Any) -> None:
    data = load_dataset("cifar100", str(fake_cifar100.folder.parent), "train")
    np.testing.assert_array_equal(data.images.numpy(), _reference_images(fake_cifar100.data["train"]))
    np.testing.assert_array_equal(data.labels.numpy(), fake_cifar100.labels["train"])
    assert fake_cifar100.coarse is not None and data.coarse_labels is not None
    np.testing.assert_array_equal(data.coarse_labels.numpy(), fake_cifar100.coarse["train"])
    assert data.classes == fake_cifar100.classes and data.coarse_classes == fake_cifar100.coarse_classes


def test_missing_folder_lists_expected_files_and_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path, "train")
    msg = str(err.value)
    assert "cifar-10-batches-py" in msg and "data_batch_5" in msg and "batches.meta" in msg
    assert "--download" in msg


def test_missing_single_file_is_named(fake_cifar10: Any) -> None:
    (fake_cifar10.folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="missing data_batch_3"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "train")


def test_truncated_pickle_names_file_and_fix(fake_cifar10: Any) -> None:
    path = fake_cifar10.folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", fake_cifar10.folder.parent, "train")
    assert str(path) in str(err.value) and "truncated or corrupt" in str(err.value)
    assert "--download" in str(err.value)
    assert not isinstance(err.value.__cause__, DatasetError)  # the pickle error is kept as the cause


def test_garbage_file_is_a_dataset_error(fake_cifar10: Any) -> None:
    (fake_cifar10.folder / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "test")


def _rewrite(path: Path, **changes: object) -> None:
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="bytes")
    for key, value in changes.items():
        if value is None:
            del obj[key.encode()]
        else:
            obj[key.encode()] = value
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def test_wrong_image_shape(fake_cifar10: Any) -> None:
    _rewrite(fake_cifar10.folder / "test_batch", data=np.zeros((6, 3000), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"'data' should be a uint8 array \[N, 3072\].*\(6, 3000\)"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "test")


def test_wrong_label_count(fake_cifar10: Any) -> None:
    _rewrite(fake_cifar10.folder / "test_batch", labels=[0, 1, 2])
    with pytest.raises(DatasetError, match="should hold 6 labels"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "test")


def test_label_out_of_range(fake_cifar10: Any) -> None:
    _rewrite(fake_cifar10.folder / "test_batch", labels=[0, 1, 2, 3, 4, 10])
    with pytest.raises(DatasetError, match=r"should lie in \[0, 10\), found \[0, 10\]"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "test")


def test_coarse_label_out_of_range(fake_cifar100: Any) -> None:
    _rewrite(fake_cifar100.folder / "test", coarse_labels=[-1] * 6)
    with pytest.raises(DatasetError, match="coarse_labels"):
        load_dataset("cifar100", fake_cifar100.folder.parent, "test")


def test_missing_key_lists_found_keys(fake_cifar10: Any) -> None:
    _rewrite(fake_cifar10.folder / "test_batch", labels=None)
    with pytest.raises(DatasetError, match=r"lacks the keys \['labels'\]"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "test")


def test_wrong_number_of_class_names(fake_cifar10: Any) -> None:
    _rewrite(fake_cifar10.folder / "batches.meta", label_names=[b"a", b"b"])
    with pytest.raises(DatasetError, match="should list 10 names, found 2"):
        load_dataset("cifar10", fake_cifar10.folder.parent, "test")
