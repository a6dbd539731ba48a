"""A mixture of samplers: each contributes a fixed share of every anchor's k negatives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from scns.sampling.base import SamplerBase
from scns.sampling.registry import SAMPLERS


def split_counts(k: int, fractions: Sequence[float]) -> list[int]:
    """Split k into integer parts proportional to ``fractions`` (largest remainder; sums to k).

    Ties in the remainder go to the earlier component.
    """
    raw = [f * k for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: k - sum(counts)]:
        counts[i] += 1
    return counts


class MixtureSampler(SamplerBase):
    """Concatenates the negatives of several samplers, split by fractions of k.

    Args:
        components: ``[(sampler, fraction), ...]``; fractions > 0 summing to 1 (within 1e-6).

    ``sample`` returns [B, k] ids: the first ``counts[0]`` columns from the first sampler, and
    so on, with ``counts = split_counts(k, fractions)``.
    """

    def __init__(self, components: Sequence[tuple[SamplerBase, float]]) -> None:
        if len(components) == 0:
            raise ValueError("MixtureSampler needs at least one (sampler, fraction) component")
        fractions = [float(f) for _, f in components]
        if any(not f > 0 for f in fractions):
            raise ValueError(f"mixture fractions must all be > 0, got {fractions}")
        if abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"mixture fractions must sum to 1, got {fractions} (sum {sum(fractions):.6g})")
        self.samplers = [s for s, _ in components]
        self.fractions = fractions

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        parts = [
            s.sample(index, labels, c, generator)
            for s, c in zip(self.samplers, split_counts(k, self.fractions), strict=True)
            if c > 0
        ]
        return torch.cat(parts, dim=1)

    def should_refresh(self, epoch: int) -> bool:
        return any(s.should_refresh(epoch) for s in self.samplers)

    def refresh(self, features: Tensor) -> None:
        for s in self.samplers:
            s.refresh(features)

    def state_dict(self) -> dict[str, Any]:
        return {str(i): s.state_dict() for i, s in enumerate(self.samplers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {str(i) for i in range(len(self.samplers))}
        if set(state) != expected:
            raise ValueError(f"mixture state keys {sorted(state)} do not match components {sorted(expected)}")
        for i, s in enumerate(self.samplers):
            s.load_state_dict(state[str(i)])

    def describe(self) -> str:
        return " + ".join(
            f"{f:g} x [{s.describe()}]" for s, f in zip(self.samplers, self.fractions, strict=True)
        )


@SAMPLERS.register("mixture")
def _build_mixture(labels: Tensor, components: Sequence[Sequence[Any]]) -> MixtureSampler:
    """``components``: ``[(name, fraction, options_dict), ...]`` (options may be omitted)."""
    built = []
    for comp in components:
        if len(comp) not in (2, 3):
            raise ValueError(f"mixture component must be (name, fraction[, options]), got {comp!r}")
        name, fraction = comp[0], comp[1]
        options = dict(comp[2]) if len(comp) == 3 else {}
        if name == "mixture":
            raise ValueError("a mixture cannot contain another mixture; list its components directly")
        built.append((SAMPLERS.build(name, labels=labels, **options), fraction))
    return MixtureSampler(built)
