"""Per-class sample lists in CSR form, with exact vectorised draws."""

from __future__ import annotations

import torch
from torch import Tensor

# Scaling by n * (1 - 2**-52) keeps floor(u * scale) <= n - 1 even for u == 1 (no clamp pass).
BELOW_ONE = 1.0 - 2.0**-52


def uniform_below(
    n: Tensor, shape: tuple[int, ...] | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Uniform integers in [0, n): n int64 (all > 0) broadcastable to ``shape`` -> int64 ``shape``.

    ``shape`` defaults to ``n.shape``; pass a broadcastable ``n`` (e.g. [B, 1] for [B, k]) to
    avoid materialising it. Uses float64 uniforms (53 random bits): for n < 2**31 each value's
    probability is within a relative 2**-21 of 1 / n.
    """
    shape = tuple(n.shape) if shape is None else tuple(shape)
    u = torch.rand(shape, dtype=torch.float64, generator=generator, device=n.device)
    return u.mul_(n.to(torch.float64) * BELOW_ONE).long()


def alias_table(weights: Tensor) -> tuple[Tensor, Tensor]:
    """Walker's alias table of non-negative ``weights`` (float64 [L], positive sum), built in closed form.

    Column i of the table holds item i with probability ``threshold[i]`` and item ``alias[i]``
    otherwise; picking a column uniformly, then one of its two items, draws item i with probability
    ``weights[i] / weights.sum()``. The construction is Vose's, serving the under-full columns
    (scaled weight a < 1) in order from the over-full ones in order, computed with cumulative sums
    instead of a loop: over-full item r (E_r: cumulative excess of the first r + 1) serves every
    under-full column whose cumulative deficit before it is <= E_r, then, once its own scaled weight
    falls below 1, its column is topped up by the next over-full item.

    Returns:
        threshold: float64 [L] in [0, 1].
        alias: int64 [L] item indices.
    """
    a = weights.to(torch.float64)
    a = a * (a.numel() / a.sum())  # scaled to mean 1
    threshold = torch.ones_like(a)
    alias = torch.arange(a.numel(), device=a.device)
    under = torch.nonzero(a < 1).flatten()
    over = torch.nonzero(a >= 1).flatten()
    if under.numel() == 0 or over.numel() == 0:  # all equal (up to rounding)
        return threshold, alias
    a_under = a[under]
    gap = 1 - a_under  # what each under-full column lacks
    deficit = torch.cumsum(gap, 0)  # inclusive cumulative deficit of the under-full columns
    deficit_before = deficit - gap
    excess = torch.cumsum(a[over] - 1, 0)
    last = over.numel() - 1
    donor = torch.searchsorted(excess, deficit_before).clamp_max_(last)
    threshold[under] = a_under
    alias[under] = over[donor]
    served = torch.searchsorted(deficit_before, excess, right=True)  # under-full columns served by ranks <= r
    deficit_served = torch.where(served > 0, deficit[(served - 1).clamp_min(0)], torch.zeros_like(excess))
    own = 1 + excess - deficit_served  # what over-full item r keeps in its own column
    threshold[over] = own.clamp(0, 1)
    topped_up = own < 1
    next_over = over[(torch.arange(over.numel(), device=a.device) + 1).clamp_max(last)]
    alias[over] = torch.where(topped_up, next_over, over)
    return threshold, alias


def take(values: Tensor, idx: Tensor) -> Tensor:
    """``values[idx]`` for a 1-D ``values`` and any-shape ``idx`` (a 1-D gather: faster on CPU)."""
    return values.gather(0, idx.reshape(-1)).view(idx.shape)


class ClassIndex:
    """Sample ids grouped by class, built once from the training labels.

    Args:
        labels: int64 [N] class of every training sample (values in [0, num_classes)).
        num_classes: C; default ``labels.max() + 1``.

    Attributes:
        labels: int64 [N].
        counts: int64 [C] samples per class (may contain zeros).
        offsets: int64 [C + 1]; class c owns ``ids[offsets[c]:offsets[c + 1]]``.
        ids: int64 [N] sample ids sorted by class (stable, so ascending within a class).
    """

    def __init__(self, labels: Tensor, num_classes: int | None = None) -> None:
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.numel() == 0:
            raise ValueError(f"labels must be a non-empty 1-D tensor, got shape {tuple(labels.shape)}")
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
        labels = labels.long()
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0:
            raise ValueError(f"labels must be >= 0, found {lo}")
        if num_classes is None:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise ValueError(f"label {hi} is out of range for num_classes={num_classes}")
        self.labels = labels
        self.num_classes = int(num_classes)
        self.counts = torch.bincount(labels, minlength=self.num_classes)
        self.offsets = torch.cat([self.counts.new_zeros(1), torch.cumsum(self.counts, 0)])
        self.ids = torch.sort(labels, stable=True).indices
        # Two copies back to back: the samples after class c's block, cyclically, are exactly the
        # other classes' samples, so ids_twice[end_c + u] for u in [0, N - n_c) skips class c.
        self._ids_twice = torch.cat([self.ids, self.ids])

    @property
    def n(self) -> int:
        return self.labels.shape[0]

    @property
    def device(self) -> torch.device:
        return self.labels.device

    @property
    def num_nonempty(self) -> int:
        return int((self.counts > 0).sum())

    def require_negatives(self) -> None:
        """Raise unless at least two classes have samples (else no sample has a negative)."""
        if self.num_nonempty < 2:
            raise ValueError(
                "negative sampling needs samples of at least two classes, but the labels hold "
                f"{self.num_nonempty} non-empty class(es): no negatives exist"
            )

    def sample_from_classes(
        self, classes: Tensor, generator: torch.Generator | None = None, validate: bool = True
    ) -> Tensor:
        """One sample id drawn uniformly from each given class: classes int64 [...] -> int64 [...].

        Every class in ``classes`` must have samples; ``validate=False`` skips that check (which
        reads a value back to the host) when the caller guarantees it.
        """
        classes = classes.long()
        n = take(self.counts, classes)
        if validate and bool((n == 0).any()):
            empty = torch.unique(classes[n == 0]).tolist()
            raise ValueError(f"cannot sample from empty class(es) {empty[:10]}: they have no samples")
        pos = uniform_below(n, generator=generator).add_(take(self.offsets, classes))
        return take(self.ids, pos)

    def sample_excluding_class(
        self, anchor_classes: Tensor, k: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """k ids per anchor, uniform over all samples not of the anchor's class (with replacement).

        Draws u in [0, N - n_c) and reads the class-sorted ids cyclically from the end of the
        anchor's class block, so each other-class sample has probability exactly 1 / (N - n_c)
        (up to the float64 resolution of :func:`uniform_below`). Call :meth:`require_negatives`
        once beforehand (a class holding every sample has no negatives).

        Args:
            anchor_classes: int64 [B].
            k: draws per anchor.

        Returns:
            int64 [B, k] sample ids.
        """
        c = anchor_classes.long().unsqueeze(1)
        end = take(self.offsets, c + 1)  # [B, 1]
        u = uniform_below(self.n - take(self.counts, c), (c.shape[0], k), generator)
        return take(self._ids_twice, u.add_(end))
