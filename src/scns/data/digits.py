"""scikit-learn's bundled 8x8 digits as 32x32 RGB images: the offline default dataset."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scns.data.datasets import DatasetSpec, register_dataset
from scns.data.imageset import ImageSet

TEST_SIZE = 360  # of 1,797 images: 1,437 train / 360 test, stratified by class
SPLIT_SEED = 0


def upsample_digits(pixels: np.ndarray, size: int = 32) -> Tensor:
    """Gray 8x8 images with values 0..16 -> uint8 RGB [N, size, size, 3] (bilinear, rounded)."""
    x = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) * (255.0 / 16.0)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).expand(-1, -1, -1, 3).contiguous()


@cache
def _split_indices() -> dict[str, np.ndarray]:
    """Fixed stratified split: per class, a seeded shuffle and a test share proportional to its size."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    train, test = train_test_split(
        np.arange(len(target)), test_size=TEST_SIZE, stratify=target, random_state=SPLIT_SEED
    )
    return {"train": np.sort(train), "test": np.sort(test)}


def load_digits_split(root: Path | None, split: str, download: bool = False) -> ImageSet:
    """Read ``split`` of the digits set (``root`` and ``download`` are ignored: the data ships with sklearn)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    idx = _split_indices()[split]
    return ImageSet(
        images=upsample_digits(bunch.images[idx]),
        labels=torch.as_tensor(bunch.target[idx], dtype=torch.int64),
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
    )
)
