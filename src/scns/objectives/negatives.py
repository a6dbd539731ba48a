"""Where a step's negatives come from: a configured sampler wrapped for the objectives.

``NegativeSource`` owns the sampler, keeps its tables in the objective's ``state_dict`` (so a resumed
run samples from the same kNN table), falls back to uniform negatives while a feature-dependent
table (sample-level SCNS) has not been built yet, and measures what it drew.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from scns.sampling import SamplerBase, UniformSampler


class NegativeSource(nn.Module):
    """Draws ``k`` negative sample ids per anchor.

    Args:
        sampler: the configured sampler (uniform, class_topk, sample_topk, mixture).
        labels: int64 [N] training labels (on the training device).
        k: negatives per anchor.
        topk_classes: optional bool [C, C] mask, row c marking the classes most similar to c;
            used only for the logged share of negatives drawn from them.
    """

    def __init__(
        self, sampler: SamplerBase, labels: Tensor, k: int, topk_classes: Tensor | None = None
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.k = int(k)
        self.register_buffer("labels", labels.long(), persistent=False)
        self.fallback = UniformSampler(labels)
        self.register_buffer("topk_classes", topk_classes, persistent=False)
        self.ready = not sampler.should_refresh(0) or not _needs_features(sampler)

    def needs_refresh(self, epoch: int) -> bool:
        """Whether a feature-dependent table should be (re)built before ``epoch``."""
        return _needs_features(self.sampler) and self.sampler.should_refresh(epoch)

    def refresh(self, features: Tensor) -> None:
        """Rebuild the sampler's tables from features [N, D]."""
        self.sampler.refresh(features)
        self.ready = True

    def forward(self, index: Tensor, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        """index, labels: [B] -> int64 [B, k] negative sample ids."""
        sampler = self.sampler if self.ready else self.fallback
        return sampler.sample(index, labels, self.k, generator)

    @torch.no_grad()
    def topk_share(self, labels: Tensor, neg_idx: Tensor) -> Tensor | None:
        """Fraction of negatives [B, K] whose class is among the anchor's top-k similar classes."""
        if self.topk_classes is None:
            return None
        neg_classes = self.labels[neg_idx]  # [B, K]
        return self.topk_classes[labels.unsqueeze(1), neg_classes].float().mean()

    def get_extra_state(self) -> Any:
        return {"sampler": self.sampler.state_dict(), "ready": self.ready}

    def set_extra_state(self, state: Any) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.ready = bool(state["ready"])


def step_stats(
    negatives: NegativeSource, labels: Tensor, neg_idx: Tensor, contrast_stats: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Scalar diagnostics of one step's negatives: mean anchor-negative and anchor-positive cosine,
    and (when a class similarity is known) the share of negatives from the anchor's top-k classes."""
    out = {"neg_sim": contrast_stats["neg_sim"], "pos_sim": contrast_stats["pos_sim"]}
    share = negatives.topk_share(labels, neg_idx)
    if share is not None:
        out["topk_share"] = share
    return out


def _needs_features(sampler: SamplerBase) -> bool:
    """A sampler whose ``refresh`` does something (it overrides the base no-op)."""
    return type(sampler).refresh is not SamplerBase.refresh
