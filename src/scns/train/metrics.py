"""Device-side metric accumulation: nothing here syncs with the host until ``compute()``."""

from __future__ import annotations

import torch
from torch import Tensor


def topk_correct(logits: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> Tensor:
    """Number of samples whose label is among the top-k predictions, for each k.

    Args:
        logits: [B, C] class scores.
        labels: [B] int64 targets.
        ks: the k values; k larger than C counts every sample as correct.
    Returns:
        float [len(ks)] counts (on the logits' device).
    """
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # [B, kmax]
    hits = top.eq(labels.unsqueeze(1))  # [B, kmax]
    cumulative = hits.cumsum(dim=1).clamp_(max=1).sum(dim=0).float()  # [kmax]: correct within top-j
    return torch.stack([cumulative[min(k, kmax) - 1] for k in ks])


class MeanMeter:
    """Running sums of named scalar tensors weighted by batch size, kept on the device."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def update(self, values: dict[str, Tensor], n: int) -> None:
        for name, value in values.items():
            value = value.detach().float() * n
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += n

    def compute(self) -> dict[str, float]:
        """Means as Python floats (one host sync)."""
        if not self.sums:
            return {}
        names = list(self.sums)
        values = torch.stack([self.sums[n] for n in names]).cpu().tolist()
        return {n: v / max(1, self.count) for n, v in zip(names, values)}
