"""Device-side metric accumulation: nothing here syncs with the host until ``compute()``."""

from __future__ import annotations

import math

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


class SampledMeter:
    """Means of named scalar diagnostics measured on a sample of steps, with their standard error.

    Each :meth:`update` is one observation per name (a step's value); :meth:`compute` gives, per
    name, the mean over the observed steps and ``<name>_se`` = sample standard deviation / sqrt(n)
    (NaN with one observation), plus ``diag_steps`` = the most observations of any name. Sums stay
    on the device until ``compute()``.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def update(self, values: dict[str, Tensor]) -> None:
        for name, value in values.items():
            v = value.detach().double().reshape(())
            pair = torch.stack([v, v * v])
            self.sums[name] = self.sums[name] + pair if name in self.sums else pair
            self.counts[name] = self.counts.get(name, 0) + 1

    def compute(self) -> dict[str, float]:
        """``{name: mean, name_se: standard error, "diag_steps": n}`` (one host sync); empty if unused."""
        if not self.sums:
            return {}
        names = list(self.sums)
        sums = torch.stack([self.sums[n] for n in names]).cpu().tolist()
        out: dict[str, float] = {}
        for name, (total, squares) in zip(names, sums):
            n = self.counts[name]
            mean = total / n
            var = (squares - n * mean * mean) / (n - 1) if n > 1 else float("nan")
            out[name] = mean
            out[f"{name}_se"] = math.sqrt(max(var, 0.0) / n) if n > 1 else float("nan")
        out["diag_steps"] = max(self.counts.values())
        return out
