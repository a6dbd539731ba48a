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

    def _log_prob(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor:
        others = (self.index.n - self.index.counts[labels]).to(torch.float32)  # [B]
        log_q = (-others.log()).unsqueeze(1).expand(neg_idx.shape)
        same = self.index.labels[neg_idx] == labels.unsqueeze(1)
        return log_q.masked_fill(same, float("-inf"))

    def describe(self) -> str:
        return f"uniform over other classes, N={self.index.n}, C={self.index.num_classes}"
