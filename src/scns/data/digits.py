"""scikit-learn's bundled 8x8 digits as 32x32 RGB images: the offline default dataset.

The 1,797 images ship inside this package as ``digits.npz`` (about 30 kB, written once from
scikit-learn by ``tools/make_digits_npz.py``), so the default dataset needs no scikit-learn.

``digits:size=16`` upsamples to another size (8 to 64 pixels). The images hold 8x8 pixels of
information whatever the size, and a network's convolutions cost in proportion to the pixels, so
16 px trains the same small model about 3x faster than 32 (``scns demo`` uses it).
"""

from __future__ import annotations

import hashlib
from functools import cache, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scns.data.datasets import DatasetSpec, VariantOption, parse_variant_options, register_dataset
from scns.data.errors import DatasetError
from scns.data.imageset import ImageSet

DEFAULT_SIZE = 32
MIN_SIZE, MAX_SIZE = 8, 64
#: ``pixel_stats(DEFAULT_SIZE)``: mean and std of the 32 px training pixels on the [0, 1] scale.
DEFAULT_PIXEL_STATS = (0.3054, 0.3237)
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


def load_digits_split(
    root: Path | None, split: str, download: bool = False, size: int = DEFAULT_SIZE
) -> ImageSet:
    """Read ``split`` of the digits set at ``size`` px (``root`` and ``download`` are ignored: the data
    ships with scns)."""
    arrays = digits_arrays()
    idx = arrays[split].astype(np.int64)
    return ImageSet(
        images=upsample_digits(arrays["pixels"][idx], size),
        labels=torch.as_tensor(arrays["target"][idx], dtype=torch.int64),
        classes=[str(d) for d in range(10)],
        name="digits",
        split=split,
    )


@cache
def pixel_stats(size: int) -> tuple[float, float]:
    """Mean and std of all pixels of the training images upsampled to ``size`` px, on the [0, 1]
    scale, computed in float64 and rounded to 4 decimals (32 px: 0.3054, 0.3237)."""
    arrays = digits_arrays()
    x = upsample_digits(arrays["pixels"][arrays["train"].astype(np.int64)], size).to(torch.float64) / 255
    return round(x.mean().item(), 4), round(x.std().item(), 4)


SIZE_OPTION = VariantOption("PIXELS", int, MIN_SIZE, MAX_SIZE, example="16", unit="pixels")


def parse_size(options: str) -> int:
    """``""`` -> 32, ``"size=16"`` -> 16; anything else is a :class:`DatasetError` naming the form."""
    return int(parse_variant_options("digits", options, {"size": SIZE_OPTION}).get("size", DEFAULT_SIZE))


def digits_spec(options: str = "") -> DatasetSpec:
    """The spec of ``digits`` (32 px) or ``digits:size=N``."""
    size = parse_size(options)
    # the default's are written out so that importing scns does not read the data (a test holds them equal)
    mean, std = DEFAULT_PIXEL_STATS if size == DEFAULT_SIZE else pixel_stats(size)
    return DatasetSpec(
        name=f"digits:{options}" if options else "digits",
        num_classes=10,
        image_size=size,
        crop_padding=max(1, size // 8),
        mean=(mean,) * 3,
        std=(std,) * 3,
        needs_data_dir=False,
        loader=partial(load_digits_split, size=size),
        variant=digits_spec,
        hflip=False,  # a mirrored 2, 3, 5 or 7 is no longer that digit
    )


register_dataset(digits_spec())
