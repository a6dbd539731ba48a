"""Negatives from the top-k classes most similar to the anchor's class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from scns.sampling.base import SamplerBase, SamplerOptions
from scns.sampling.class_index import BELOW_ONE, ClassIndex, alias_table, take, uniform_below
from scns.sampling.registry import SAMPLERS

Weighting = Literal["uniform", "softmax"]
Ties = Literal["share", "id"]


@dataclass(frozen=True)
class ClassTopKOptions(SamplerOptions):
    """Options of :class:`ClassTopKSampler` (see its docstring)."""

    top_k: int = 10
    weighting: Weighting = "uniform"
    class_temperature: float = 1.0
    ties: Ties = "share"

    def __post_init__(self) -> None:
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be > 0 (a number of classes), got {self.top_k!r}")
        if self.weighting not in ("uniform", "softmax"):
            raise ValueError(f"weighting must be 'uniform' or 'softmax', got {self.weighting!r}")
        if not self.class_temperature > 0 or self.class_temperature == float("inf"):
            raise ValueError(f"class_temperature must be finite and > 0, got {self.class_temperature}")
        if self.ties not in ("share", "id"):
            raise ValueError(
                f"ties must be 'share' (tie groups share the last places) or 'id' (legacy: "
                f"ties broken by class id), got {self.ties!r}"
            )

    def check_classes(self, num_classes: int) -> None:
        if not 1 <= self.top_k <= num_classes - 1:
            raise ValueError(
                f"top_k={self.top_k} classes is impossible with {num_classes} classes: each class has "
                f"{num_classes - 1} other classes, so top_k must be in [1, {num_classes - 1}]"
            )


@SAMPLERS.register("class_topk")
class ClassTopKSampler(SamplerBase):
    """Negatives only from each class's ``top_k`` most similar other classes.

    Args:
        labels: int64 [N] training labels.
        similarity: [C, C] class-to-class similarity (diagonal ignored; must be finite): a tensor,
            an array, or an object with a ``.matrix`` attribute.
        top_k: classes kept per anchor class (their expected number), 1 <= top_k <= C - 1.
        weighting: "uniform": every sample of the kept classes is equally likely (a class is
            drawn in proportion to its size); "softmax": a class is drawn with probability
            proportional to exp(similarity / temperature) over the kept classes, then one of its
            samples uniformly.
        temperature: softmax temperature (> 0), used by "softmax" only.
        num_classes: C; default the similarity's size.
        ties: "share" (default): classes tied at the k-th place are all kept and share its
            remaining weight (:func:`scns.similarity.topk_weights`), so no result depends on the
            order of the class list; "id": the legacy cut, ties broken by the lower class id.
        max_list_size: each anchor class's candidate list (int32, about top_k * N / C entries per
            class) is materialised if all lists together hold at most this many entries, so one
            uniform draw picks a negative (with an alias table, 16 more bytes per entry, when the
            candidates are not equally likely); otherwise a class is drawn by inverse CDF over the
            kept classes, then a sample of it. Both exact (up to float64 resolution); the lists are
            2-5x faster (BENCHMARKS.md s. 2).

    Classes without samples get weight 0; an anchor class with samples whose whole kept set is
    empty raises ``ValueError`` at construction. Draws are with replacement.

    Attributes:
        weights: float64 [C, C] class weights w[c, j] in [0, 1] (rows sum to top_k).
        probs: float64 [C, C] probability that a draw for an anchor of class c comes from class j.
        topk_classes: int64 [C, m] kept classes per row, most probable first, padded by repeating the
            row's last kept class (m = the most kept classes of any row; top_k unless ties are shared).
    """

    Options = ClassTopKOptions
    needs_similarity = True

    def __init__(
        self,
        labels: Tensor,
        similarity: Tensor,
        top_k: int,
        weighting: Weighting = "uniform",
        temperature: float = 1.0,
        num_classes: int | None = None,
        ties: Ties = "share",
        max_list_size: int = 2**23,
    ) -> None:
        labels = torch.as_tensor(labels)
        ClassTopKOptions(top_k=top_k, weighting=weighting, class_temperature=temperature, ties=ties)
        sim = _as_matrix(similarity).to(device=labels.device, dtype=torch.float64)
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(f"similarity must be a square [C, C] matrix, got {tuple(sim.shape)}")
        c = sim.shape[0]
        self.index = ClassIndex(labels, c if num_classes is None else num_classes)
        if self.index.num_classes != c:
            raise ValueError(f"similarity is {c} x {c} but there are {self.index.num_classes} classes")
        self.index.require_negatives()
        if not 1 <= top_k <= c - 1:
            raise ValueError(f"top_k must be in [1, {c - 1}] (C - 1 other classes), got {top_k}")
        self.top_k, self.weighting, self.temperature, self.ties = (
            int(top_k),
            weighting,
            float(temperature),
            ties,
        )
        self.max_list_size = int(max_list_size)
        self.set_similarity(sim)

    @classmethod
    def from_options(
        cls,
        labels: Tensor,
        options: SamplerOptions,
        *,
        similarity: Tensor | None = None,
        build: Callable[[str], SamplerBase] | None = None,
    ) -> ClassTopKSampler:
        assert isinstance(options, ClassTopKOptions)
        if similarity is None:
            raise ValueError(
                "class_topk needs a class similarity (contrast.similarity, e.g. glove or wordnet)"
            )
        return cls(
            labels,
            similarity,
            options.top_k,
            weighting=options.weighting,
            temperature=options.class_temperature,
            ties=options.ties,
        )

    def set_similarity(self, similarity: Tensor) -> None:
        """(Re)build every table from a [C, C] similarity (an adaptive source calls this each epoch)."""
        from scns.similarity import top_k as top_k_by_id
        from scns.similarity import topk_weights

        sim = _as_matrix(similarity).to(device=self.index.device, dtype=torch.float64)
        c = self.index.num_classes
        if tuple(sim.shape) != (c, c):
            raise ValueError(f"similarity must be [{c}, {c}], got {tuple(sim.shape)}")
        off_diag = ~torch.eye(c, dtype=torch.bool, device=sim.device)
        if not bool(torch.isfinite(sim[off_diag]).all()):
            raise ValueError("similarity must be finite off the diagonal (found NaN or inf)")
        if self.ties == "share":
            weights = topk_weights(sim, self.top_k)
        else:
            weights = torch.zeros(c, c, dtype=torch.float64, device=sim.device)
            weights.scatter_(1, top_k_by_id(sim, self.top_k), 1.0)
        sizes = self.index.counts.to(torch.float64)
        if self.weighting == "uniform":
            mass = weights * sizes.unsqueeze(0)
        else:
            logits = (sim / self.temperature).masked_fill(
                (weights == 0) | (sizes == 0).unsqueeze(0), float("-inf")
            )
            mass = weights * torch.softmax(logits, dim=1).nan_to_num(0.0)
        total = mass.sum(1, keepdim=True)
        dead = (total.squeeze(1) == 0) & (self.index.counts > 0)
        if bool(dead.any()):
            bad = torch.nonzero(dead).flatten().tolist()
            raise ValueError(
                f"class(es) {bad[:10]} have no samples in any of their top-{self.top_k} similar classes; "
                "raise top_k or check the similarity matrix against the labels"
            )
        self.weights = weights
        self.probs = mass / total.clamp_min(1e-300)
        # Kept classes per row, most similar first (equal similarities by class id).
        kept = weights > 0
        m = int(kept.sum(1).max())
        key = sim.masked_fill(~kept, float("-inf"))
        order = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :m]  # [C, m]
        row_kept = kept.sum(1, keepdim=True)
        last = order.gather(1, (row_kept - 1).clamp_min(0))
        cols = torch.arange(m, device=order.device).unsqueeze(0)
        self.topk_classes = torch.where(cols < row_kept, order, last)
        self._cdf = torch.cumsum(self.probs.gather(1, self.topk_classes) * (cols < row_kept), dim=1)
        self._cdf[:, -1] = 1.0 + 1e-12  # rounding: u < 1 always lands in the row
        self._sizes = self.index.counts[self.topk_classes]
        self._starts = self.index.offsets[self.topk_classes]
        self._list: Tensor | None = None  # candidate lists (with their alias pairs): see below
        self._pairs: Tensor | None = None
        if int((self._sizes * (cols < row_kept)).sum()) <= self.max_list_size:
            self._build_candidate_tables(row_kept.squeeze(1))

    def _build_candidate_tables(self, row_kept: Tensor) -> None:
        """Concatenate, per anchor class, the ids of its kept classes, and when its candidates are
        not all equally likely (softmax weighting, shared ties) an alias table over them: one
        float64 uniform then picks a list position and, from its fractional part, one of the
        position's two entries (:func:`alias_table`)."""
        m = self.topk_classes.shape[1]
        cols = torch.arange(m, device=row_kept.device).unsqueeze(0)
        in_row = cols < row_kept.unsqueeze(1)
        sizes = (self._sizes * in_row).flatten()
        block = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), sizes)
        block_first = torch.cumsum(sizes, 0) - sizes  # position of each block's first entry
        within = torch.arange(block.numel(), device=sizes.device) - block_first[block]
        self._list = self.index.ids[self._starts.flatten()[block] + within].to(torch.int32)
        self._list_sizes = sizes.view(-1, m).sum(1)
        self._list_starts = torch.cumsum(self._list_sizes, 0) - self._list_sizes
        self._list_scale = self._list_sizes.to(torch.float64) * BELOW_ONE  # floor(u * scale) < size
        if self.weighting == "uniform" and bool(((self.weights == 0) | (self.weights == 1)).all()):
            return  # every candidate of a row equally likely: the list alone is exact
        # every candidate's probability: its class's, shared equally by the class's samples
        block_prob = (self.probs.gather(1, self.topk_classes) * in_row).flatten() / sizes.clamp_min(1)
        entry_prob = block_prob[block]
        threshold = torch.ones_like(entry_prob)
        partner = torch.arange(entry_prob.numel(), device=entry_prob.device)
        for start, size in zip(self._list_starts.tolist(), self._list_sizes.tolist(), strict=True):
            if size:
                t, alias = alias_table(entry_prob[start : start + size])
                threshold[start : start + size], partner[start : start + size] = t, alias + start
        self._threshold = threshold
        # (own id, alias id) side by side: slot 2 * position + (fraction >= threshold)
        self._pairs = torch.stack([self._list, self._list[partner]], dim=1).flatten()

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        b = labels.shape[0]
        if self._list is not None:
            c = labels.unsqueeze(1)
            u = torch.rand((b, k), generator=generator, device=labels.device, dtype=torch.float64)
            x = u.mul_(take(self._list_scale, c))
            pos = x.long().add_(take(self._list_starts, c))  # [B, k] positions in the row's list
            if self._pairs is None:
                return take(self._list, pos).long()
            second = x.frac_() >= take(self._threshold, pos)  # the fraction is uniform too
            return take(self._pairs, pos.mul_(2).add_(second)).long()
        # inverse CDF over the anchor class's kept classes, then a uniform sample of the class
        u = torch.rand((b, k), generator=generator, device=labels.device, dtype=torch.float64)
        j = torch.searchsorted(self._cdf[labels], u, right=True)  # [B, k] positions in the kept list
        pos = uniform_below(self._sizes[labels].gather(1, j), generator=generator)
        return take(self.index.ids, pos.add_(self._starts[labels].gather(1, j)))

    def _log_prob(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor:
        neg_class = self.index.labels[neg_idx]  # [B, K]
        p_class = self.probs[labels.unsqueeze(1), neg_class]
        size = self.index.counts[neg_class].to(torch.float64)
        return (p_class.log() - size.log()).to(torch.float32)

    def describe(self) -> str:
        extra = f", T={self.temperature}" if self.weighting == "softmax" else ""
        ties = "" if self.ties == "share" else ", ties by class id"
        return (
            f"class top-{self.top_k} ({self.weighting}{extra}{ties}), N={self.index.n}, "
            f"C={self.index.num_classes}"
        )


def _as_matrix(similarity: object) -> Tensor:
    """The [C, C] tensor of a similarity given as a tensor, array, or object with ``.matrix``."""
    matrix = getattr(similarity, "matrix", similarity)
    return torch.as_tensor(matrix)
