"""Uniform negatives over every sample of the other classes (the CRD baseline)."""

from __future__ import annotations

import torch
from torch import Tensor

from scns.sampling.base import SamplerBase
from scns.sampling.class_index import ClassIndex
from scns.sampling.registry import SAMPLERS


@SAMPLERS.register("uniform")
class UniformSampler(SamplerBase):
    """Each sample of another class has probability exactly 1 / (N - n_c) per draw.

    Draws are with replacement (CRD draws without replacement when it can; the per-draw
    marginal is the same and k may exceed N - n_c).

    Args:
        labels: int64 [N] training labels, on the device sampling runs on.
        num_classes: C; default ``labels.max() + 1``.
    """

    def __init__(self, labels: Tensor, num_classes: int | None = None) -> None:
        self.index = ClassIndex(labels, num_classes)
        self.index.require_negatives()

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        return self.index.sample_excluding_class(labels, k, generator)

    def describe(self) -> str:
        return f"uniform over other classes, N={self.index.n}, C={self.index.num_classes}"
