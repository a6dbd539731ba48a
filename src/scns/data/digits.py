"""scikit-learn's bundled 8x8 digits as 32x32 RGB images: the offline default dataset.

The 1,797 images ship inside this package as ``digits.npz`` (about 30 kB, written once from
scikit-learn by ``tools/make_digits_npz.py``), so the default dataset needs no scikit-learn.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scns.data.datasets import DatasetSpec, register_dataset
from scns.data.errors import DatasetError
from scns.data.imageset import ImageSet

TEST_SIZE = 360  # of 1,797 images: 1,437 train / 360 test, stratified by class
SPLIT_SEED = 0
ARRAYS_FILE = Path(__file__).with_name("digits.npz")
ARRAYS = ("pixels", "target", "train", "test")
#: sha256 of the shipped arrays (``arrays_sha256``), printed by tools/make_digits_npz.py.
ARRAYS_SHA256 = "76e51d7d89c713f0e282f5ffab18198cfff12ae5fd225653e6582b6ce898dcff"


def upsample_digits(pixels: np.ndarray, size: int = 32) -> Tensor:
    """Gray 8x8 images with values 0..16 -> uint8 RGB [N, size, size, 3] (bilinear, rounded)."""
    x = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) * (255.0 / 16.0)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).expand(-1, -1, -1, 3).contiguous()


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over each array's name, dtype, shape and bytes, in ``ARRAYS`` order."""
    digest = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}\n".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


@cache
def digits_arrays() -> dict[str, np.ndarray]:
    """The shipped arrays, checked: ``pixels`` uint8 [1797, 8, 8] (0..16), ``target`` uint8 [1797],
    ``train`` / ``test`` sample ids of the fixed stratified split (sorted)."""
    try:
        with np.load(ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ARRAYS}
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(
            f"cannot read the bundled digits data {ARRAYS_FILE} ({exc}); reinstall scns"
        ) from exc
    if arrays_sha256(arrays) != ARRAYS_SHA256:
        raise DatasetError(
            f"the bundled digits data {ARRAYS_FILE} is damaged (checksum mismatch); reinstall scns"
        )
    return arrays


def load_digits_split(root: Path | None, split: str, download: bool = False) -> ImageSet:
    """Read ``split`` of the digits set (``root`` and ``download`` are ignored: the data ships with scns)."""
    arrays = digits_arrays()
    idx = arrays[split].astype(np.int64)
    return ImageSet(
        images=upsample_digits(arrays["pixels"][idx]),
        labels=torch.as_tensor(arrays["target"][idx], dtype=torch.int64),
        classes=[str(d) for d in range(10)],
        name="digits",
        split=split,
    )


register_dataset(
    DatasetSpec(
        name="digits",
        num_classes=10,
        image_size=32,
        crop_padding=4,
        # Mean/std of all pixels of the 1,437 upsampled training images ([0, 1] scale), computed once
        # with float64: x = load_dataset("digits", None, "train").images / 255; x.mean((0,1,2)), x.std(...).
        mean=(0.3054, 0.3054, 0.3054),
        std=(0.3237, 0.3237, 0.3237),
        needs_data_dir=False,
        loader=load_digits_split,
        hflip=False,  # a mirrored 2, 3, 5 or 7 is no longer that digit
    )
)
