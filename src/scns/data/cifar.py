"""CIFAR-10 and CIFAR-100 from the official python pickle layout."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scns.data.datasets import DatasetSpec, register_dataset
from scns.data.download import Archive
from scns.data.errors import DatasetError
from scns.data.imageset import ImageSet

_REFETCH = "delete the folder and run again with --download (or re-download it by hand)"


@dataclass(frozen=True)
class CifarLayout:
    """Files of one CIFAR variant inside its archive folder."""

    name: str
    archive: Archive
    splits: dict[str, tuple[str, ...]]
    meta: str
    label_key: bytes  # key of the class ids in a data file
    names_key: bytes  # key of the class names in the meta file
    num_classes: int
    coarse_label_key: bytes | None = None
    coarse_names_key: bytes | None = None
    num_coarse: int = 0

    @property
    def files(self) -> list[str]:
        return [f for names in self.splits.values() for f in names] + [self.meta]


CIFAR10 = CifarLayout(
    name="cifar10",
    archive=Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
    ),
    splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    meta="batches.meta",
    label_key=b"labels",
    names_key=b"label_names",
    num_classes=10,
)
CIFAR100 = CifarLayout(
    name="cifar100",
    archive=Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
    ),
    splits={"train": ("train",), "test": ("test",)},
    meta="meta",
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
    num_classes=100,
    coarse_label_key=b"coarse_labels",
    coarse_names_key=b"coarse_label_names",
    num_coarse=20,
)


def _unpickle(path: Path, keys: tuple[bytes, ...]) -> dict[bytes, Any]:
    """Read one CIFAR pickle and check it is a dict holding ``keys``."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing; {_REFETCH}")
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as exc:  # pickle raises many types on damaged input; all mean the same here
        raise DatasetError(
            f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); {_REFETCH}"
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{path} should hold a dict, found {type(obj).__name__}; {_REFETCH}")
    missing = [k.decode() for k in keys if k not in obj]
    if missing:
        found = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in obj)
        raise DatasetError(f"{path} lacks the keys {missing} (found {found}); {_REFETCH}")
    return obj


def _labels(path: Path, raw: Any, key: bytes, n: int, num_classes: int) -> np.ndarray:
    try:
        labels = np.asarray(raw, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: '{key.decode()}' is not a list of integers; {_REFETCH}") from exc
    if labels.shape != (n,):
        raise DatasetError(
            f"{path}: '{key.decode()}' should hold {n} labels, found shape {labels.shape}; {_REFETCH}"
        )
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{path}: '{key.decode()}' should lie in [0, {num_classes}), found "
            f"[{labels.min()}, {labels.max()}]; {_REFETCH}"
        )
    return labels


def _names(path: Path, raw: Any, key: bytes, count: int) -> list[str]:
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    if len(names) != count:
        raise DatasetError(
            f"{path}: '{key.decode()}' should list {count} names, found {len(names)}; {_REFETCH}"
        )
    return names


def _read_batch(path: Path, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One data file -> (images uint8 [n, 32, 32, 3], labels [n], coarse labels [n] or None)."""
    keys = (b"data", layout.label_key) + ((layout.coarse_label_key,) if layout.coarse_label_key else ())
    obj = _unpickle(path, keys)
    data = obj[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(
            f"{path}: 'data' should be a uint8 array [N, 3072] (3x32x32 images), found {desc}; {_REFETCH}"
        )
    n = data.shape[0]
    labels = _labels(path, obj[layout.label_key], layout.label_key, n, layout.num_classes)
    coarse = None
    if layout.coarse_label_key is not None:
        coarse = _labels(path, obj[layout.coarse_label_key], layout.coarse_label_key, n, layout.num_coarse)
    return data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1), labels, coarse


def load_cifar(layout: CifarLayout, root: Path | None, split: str, download: bool = False) -> ImageSet:
    """Read ``split`` of a CIFAR variant from ``root/<archive folder>``.

    With ``download`` the official archive is fetched first when any file is missing.
    """
    if root is None:
        raise ValueError("this dataset is read from files: pass a data directory (--data-dir)")
    folder = root / layout.archive.folder
    missing = [f for f in layout.files if not (folder / f).is_file()]
    if missing and download:
        layout.archive.fetch(root, overwrite=folder.exists())
        missing = [f for f in layout.files if not (folder / f).is_file()]
    if missing:
        what = (
            f"{folder} is missing {', '.join(missing)}" if folder.is_dir() else f"there is no folder {folder}"
        )
        raise DatasetError(
            f"{layout.name}: {what} (expected {layout.archive.folder}/ with {', '.join(layout.files)}). "
            f"Run again with --download to fetch the official archive "
            f"({layout.archive.url}) into {root}, or point --data-dir at the folder that contains "
            f"{layout.archive.folder}/."
        )
    parts = [_read_batch(folder / f, layout) for f in layout.splits[split]]
    meta_path = folder / layout.meta
    name_keys = (layout.names_key,) + ((layout.coarse_names_key,) if layout.coarse_names_key else ())
    meta = _unpickle(meta_path, name_keys)
    classes = _names(meta_path, meta[layout.names_key], layout.names_key, layout.num_classes)
    coarse_labels = coarse_classes = None
    if layout.coarse_names_key is not None:
        coarse_classes = _names(
            meta_path, meta[layout.coarse_names_key], layout.coarse_names_key, layout.num_coarse
        )
        coarse_labels = torch.from_numpy(np.concatenate([p[2] for p in parts]))
    return ImageSet(
        images=torch.from_numpy(np.concatenate([p[0] for p in parts])),
        labels=torch.from_numpy(np.concatenate([p[1] for p in parts])),
        classes=classes,
        name=layout.name,
        split=split,
        coarse_labels=coarse_labels,
        coarse_classes=coarse_classes,
    )


def _spec(
    layout: CifarLayout, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> DatasetSpec:
    return DatasetSpec(
        name=layout.name,
        num_classes=layout.num_classes,
        image_size=32,
        crop_padding=4,
        mean=mean,
        std=std,
        needs_data_dir=True,
        loader=lambda root, split, download: load_cifar(layout, root, split, download),
        archive=layout.archive,
    )


# Per-channel mean/std of each training split (all pixels, [0, 1] scale).
register_dataset(_spec(CIFAR10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)))
register_dataset(_spec(CIFAR100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)))
