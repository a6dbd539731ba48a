"""Per-class sample lists in CSR form, with exact vectorised draws."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform_below(n: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform integers in [0, n) elementwise: n int64 [...] (all > 0) -> int64 [...].

    Uses float64 uniforms (53 random bits), so the bias for n < 2**31 is below 2**-22 per value.
    """
    u = torch.rand(n.shape, dtype=torch.float64, generator=generator, device=n.device)
    r = (u * n.to(torch.float64)).long()
    return torch.minimum(r, n - 1)  # guards the rounding case u * n == n


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
        n = self.counts[classes]
        if validate and bool((n == 0).any()):
            empty = torch.unique(classes[n == 0]).tolist()
            raise ValueError(f"cannot sample from empty class(es) {empty[:10]}: they have no samples")
        pos = self.offsets[classes] + uniform_below(n.clamp_min(1), generator)
        return self.ids[pos]

    def sample_excluding_class(
        self, anchor_classes: Tensor, k: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """k ids per anchor, uniform over all samples not of the anchor's class (with replacement).

        Draws u in [0, N - n_c) and skips the anchor's class block in the class-sorted order, so
        each other-class sample has probability exactly 1 / (N - n_c). Call
        :meth:`require_negatives` once beforehand (an anchor class holding every sample has no
        negatives).

        Args:
            anchor_classes: int64 [B].
            k: draws per anchor.

        Returns:
            int64 [B, k] sample ids.
        """
        c = anchor_classes.long().unsqueeze(1)
        n_c = self.counts[c]
        start = self.offsets[c]
        u = uniform_below((self.n - n_c).expand(-1, k), generator)
        pos = u + (u >= start).long() * n_c
        return self.ids[pos]
