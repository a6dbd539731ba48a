"""Negatives from the top-k classes most similar to the anchor's class."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from scns.sampling.alias import build_alias, draw_alias
from scns.sampling.base import SamplerBase
from scns.sampling.class_index import ClassIndex, take, uniform_below
from scns.sampling.registry import SAMPLERS

Weighting = Literal["uniform", "softmax"]


@SAMPLERS.register("class_topk")
class ClassTopKSampler(SamplerBase):
    """Negatives only from each class's ``top_k`` most similar other classes.

    Args:
        labels: int64 [N] training labels.
        similarity: [C, C] class-to-class similarity (diagonal ignored; must be finite): a tensor,
            an array, or an object with a ``.matrix`` [C, C] attribute.
        top_k: classes kept per anchor class, 1 <= top_k <= C - 1.
        weighting: "uniform": every sample of the top-k classes is equally likely (a class is
            drawn in proportion to its size); "softmax": a class is drawn with probability
            softmax(similarity / temperature) over the top-k, then one of its samples uniformly.
        temperature: softmax temperature (> 0), used by "softmax" only.
        num_classes: C; default the similarity's size.
        max_list_size: "uniform" weighting materialises each anchor class's candidate list (int32,
            about top_k * N entries in all) when it has at most this many entries, so one
            uniform draw picks a negative; beyond it (and for "softmax") a class is drawn from an
            alias table, then a sample of it. Both are exact; the lists are about 2x faster.

    Classes without samples inside a top-k set get weight 0; an anchor class with samples whose
    whole top-k set is empty raises ``ValueError`` at construction. Draws are with replacement.

    Attributes:
        topk_classes: int64 [C, top_k] most similar other classes, most similar first (ties:
            lower class id first).
        class_probs: float64 [C, top_k] probability of drawing each of them.
    """

    def __init__(
        self,
        labels: Tensor,
        similarity: Tensor,
        top_k: int,
        weighting: Weighting = "uniform",
        temperature: float = 1.0,
        num_classes: int | None = None,
        max_list_size: int = 2**23,
    ) -> None:
        labels = torch.as_tensor(labels)
        sim = _as_matrix(similarity).to(device=labels.device, dtype=torch.float64)
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(f"similarity must be a square [C, C] matrix, got {tuple(sim.shape)}")
        c = sim.shape[0]
        self.index = ClassIndex(labels, c if num_classes is None else num_classes)
        if self.index.num_classes != c:
            raise ValueError(f"similarity is {c} x {c} but there are {self.index.num_classes} classes")
        self.index.require_negatives()
        off_diag = ~torch.eye(c, dtype=torch.bool, device=sim.device)
        if not bool(torch.isfinite(sim[off_diag]).all()):
            raise ValueError("similarity must be finite off the diagonal (found NaN or inf)")
        if not 1 <= top_k <= c - 1:
            raise ValueError(f"top_k must be in [1, {c - 1}] (C - 1 other classes), got {top_k}")
        if weighting not in ("uniform", "softmax"):
            raise ValueError(f"weighting must be 'uniform' or 'softmax', got {weighting!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.top_k, self.weighting, self.temperature = int(top_k), weighting, float(temperature)

        masked = sim.masked_fill(~off_diag, float("-inf"))
        # A stable sort breaks ties (common in hierarchy similarities) by class id, on any device.
        order = torch.sort(masked, dim=1, descending=True, stable=True)
        top_sim, self.topk_classes = order.values[:, : self.top_k], order.indices[:, : self.top_k]
        sizes = self.index.counts[self.topk_classes].to(torch.float64)
        if weighting == "uniform":
            weights = sizes
        else:
            logits = (top_sim / self.temperature).masked_fill(sizes == 0, float("-inf"))
            weights = torch.softmax(logits, dim=1).nan_to_num(0.0)
        total = weights.sum(1, keepdim=True)
        dead = (total.squeeze(1) == 0) & (self.index.counts > 0)
        if bool(dead.any()):
            bad = torch.nonzero(dead).flatten().tolist()
            raise ValueError(
                f"class(es) {bad[:10]} have no samples in any of their top-{self.top_k} similar classes; "
                "raise top_k or check the similarity matrix against the labels"
            )
        self.class_probs = weights / total.clamp_min(1e-300)
        # Per (anchor class, top-k position): the size and start of that class's block of ids.
        self._sizes = self.index.counts[self.topk_classes]
        self._starts = self.index.offsets[self.topk_classes]
        self._list: Tensor | None = None
        list_size = int(self._sizes.sum())
        if weighting == "uniform" and list_size <= max_list_size:
            self._build_candidate_lists()
        else:
            self._accept, self._alias = build_alias(self.class_probs)

    def _build_candidate_lists(self) -> None:
        """Concatenate, per anchor class, the ids of its top-k classes: one uniform draw then picks
        a negative (every candidate equally likely, as "uniform" weighting asks)."""
        sizes = self._sizes.flatten()
        block = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), sizes)
        block_first = torch.cumsum(sizes, 0) - sizes  # position of each block's first entry
        within = torch.arange(block.numel(), device=sizes.device) - block_first[block]
        self._list = self.index.ids[self._starts.flatten()[block] + within].to(torch.int32)
        self._list_sizes = self._sizes.sum(1)
        self._list_starts = torch.cumsum(self._list_sizes, 0) - self._list_sizes

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        b = labels.shape[0]
        if self._list is not None:
            c = labels.unsqueeze(1)
            pos = uniform_below(take(self._list_sizes, c), (b, k), generator).add_(take(self._list_starts, c))
            return take(self._list, pos).long()
        j = draw_alias(self._accept[labels], self._alias[labels], k, generator)  # [B, k] top-k positions
        pos = uniform_below(self._sizes[labels].gather(1, j), generator=generator)
        return take(self.index.ids, pos.add_(self._starts[labels].gather(1, j)))

    def describe(self) -> str:
        extra = f", T={self.temperature}" if self.weighting == "softmax" else ""
        return (
            f"class top-{self.top_k} ({self.weighting}{extra}), N={self.index.n}, C={self.index.num_classes}"
        )


def _as_matrix(similarity: object) -> Tensor:
    """The [C, C] tensor of a similarity given as a tensor, array, or object with ``.matrix``."""
    matrix = getattr(similarity, "matrix", similarity)
    return torch.as_tensor(matrix)
