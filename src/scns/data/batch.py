"""The unit of work that flows through a training step."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class Batch(NamedTuple):
    """One mini-batch.

    Attributes:
        x: images, float [B, 3, H, W] after augmentation and normalisation
            (uint8 [B, H, W, 3] before the loader's transform).
        y: int64 class labels [B].
        index: int64 [B], each sample's position in its split (the training set for training
            batches); memory banks and samplers are keyed by it.
    """

    x: Tensor
    y: Tensor
    index: Tensor  # type: ignore[assignment]  # a field by design; it hides tuple.index, which nothing calls
