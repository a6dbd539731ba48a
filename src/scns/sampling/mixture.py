"""A mixture of samplers: each contributes a fixed share of every anchor's k negatives."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scns.sampling.base import SamplerBase, SamplerOptions
from scns.sampling.registry import SAMPLERS
from scns.sampling.uniform import UniformSampler


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


def ramp_factor(epoch: int, ramp: Sequence[int]) -> float:
    """The share of a scheduled mixture's non-uniform components at ``epoch``: 0 before ``ramp[0]``,
    rising linearly to 1 at ``ramp[1]`` (a step when they are equal); 1 without a ramp."""
    if not ramp:
        return 1.0
    start, end = ramp
    if epoch < start:
        return 0.0
    if epoch >= end:
        return 1.0
    return (epoch - start) / (end - start)


@dataclass(frozen=True)
class MixtureOptions(SamplerOptions):
    """Options of :class:`MixtureSampler`.

    ``mixture``: ``name:fraction`` parts (fractions > 0 summing to 1); each component takes its own
    options. ``mixture_ramp``: ``()`` for fixed fractions, or ``(start, end)`` epochs over which
    the non-uniform components' shares rise from 0 to their fractions (the uniform component holds
    the rest; the mixture must have one).
    """

    mixture: tuple[str, ...] = ("uniform:0.5", "class_topk:0.5")
    mixture_ramp: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        parts = self.parts()
        names = [name for name, _ in parts]
        if "mixture" in names:
            raise ValueError("a mixture cannot contain another mixture; list its components directly")
        if len(set(names)) != len(names):
            raise ValueError(f"contrast.mixture names a sampler twice: {list(self.mixture)}")
        fractions = [f for _, f in parts]
        if any(not f > 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(
                f"contrast.mixture fractions must be > 0 and sum to 1, got {list(self.mixture)} "
                f"(sum {sum(fractions):.6g})"
            )
        if self.mixture_ramp:
            if len(self.mixture_ramp) != 2 or not 0 <= self.mixture_ramp[0] <= self.mixture_ramp[1]:
                raise ValueError(
                    f"contrast.mixture_ramp must be [start, end] epochs with 0 <= start <= end, got "
                    f"{list(self.mixture_ramp)}"
                )
            if "uniform" not in names:
                raise ValueError(
                    "contrast.mixture_ramp needs a uniform component to hold the share not yet ramped"
                )

    def parts(self) -> list[tuple[str, float]]:
        """``[(name, fraction), ...]`` of ``mixture``."""
        out = []
        for part in self.mixture:
            name, _, fraction = str(part).partition(":")
            try:
                share = float(fraction)
            except ValueError:
                raise ValueError(
                    f"contrast.mixture part '{part}' must look like name:fraction, e.g. uniform:0.5"
                ) from None
            if not math.isfinite(share):
                raise ValueError(f"contrast.mixture part '{part}' has a non-finite fraction")
            out.append((name.strip(), share))
        return out


@SAMPLERS.register("mixture")
class MixtureSampler(SamplerBase):
    """Concatenates the negatives of several samplers, split by fractions of k.

    Args:
        components: ``[(sampler, fraction), ...]``; fractions > 0 summing to 1 (within 1e-6). A
            component may also be ``(name, fraction[, options])``: the registered sampler ``name``
            is built over ``labels`` with ``options``.
        labels: int64 [N] training labels (needed only for components given by name).
        ramp: ``()`` or ``(start, end)`` epochs: the shares of the components that are not
            :class:`UniformSampler` are scaled by :func:`ramp_factor` and the first uniform
            component takes the rest (see :meth:`set_epoch`).

    ``sample`` returns [B, k] ids: the first ``counts[0]`` columns from the first sampler, and
    so on, with ``counts = split_counts(k, fractions)`` (components with no column are skipped).
    """

    Options = MixtureOptions

    def __init__(
        self,
        components: Sequence[Sequence[Any]],
        ramp: Sequence[int] = (),
        labels: Tensor | None = None,
    ) -> None:
        if len(components) == 0:
            raise ValueError("MixtureSampler needs at least one (sampler, fraction) component")
        components = [_component(comp, labels) for comp in components]
        fractions = [float(f) for _, f in components]
        if any(not f > 0 for f in fractions):
            raise ValueError(f"mixture fractions must all be > 0, got {fractions}")
        if abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"mixture fractions must sum to 1, got {fractions} (sum {sum(fractions):.6g})")
        self.samplers = [s for s, _ in components]
        self.base_fractions = fractions
        self.fractions = list(fractions)
        self.ramp = tuple(int(e) for e in ramp)
        uniform = [i for i, s in enumerate(self.samplers) if type(s) is UniformSampler]
        if self.ramp and not uniform:
            raise ValueError("a mixture ramp needs a uniform component to hold the share not yet ramped")
        self._uniform = uniform[0] if uniform else None
        self.set_epoch(0)

    @classmethod
    def from_options(
        cls,
        labels: Tensor,
        options: SamplerOptions,
        *,
        similarity: Tensor | None = None,
        build: Callable[[str], SamplerBase] | None = None,
    ) -> MixtureSampler:
        assert isinstance(options, MixtureOptions)
        if build is None:
            raise ValueError("a mixture is built with a component builder (scns.sampling.build_configured)")
        return cls([(build(name), fraction) for name, fraction in options.parts()], options.mixture_ramp)

    def set_epoch(self, epoch: int) -> None:
        if not self.ramp:
            return
        r = ramp_factor(epoch, self.ramp)
        fractions = [f * r for f in self.base_fractions]
        assert self._uniform is not None
        fractions[self._uniform] = self.base_fractions[self._uniform] + (1.0 - r) * sum(
            f for i, f in enumerate(self.base_fractions) if i != self._uniform
        )
        self.fractions = fractions

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        parts = [
            s.sample(index, labels, c, generator)
            for s, c in zip(self.samplers, split_counts(k, self.fractions), strict=True)
            if c > 0
        ]
        return torch.cat(parts, dim=1)

    def _log_prob(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor:
        """The per-draw marginal over all K columns: sum over components of (columns / K) x q."""
        k = neg_idx.shape[1]
        terms = [
            math.log(c / k) + s.log_prob(index, labels, neg_idx)
            for s, c in zip(self.samplers, split_counts(k, self.fractions), strict=True)
            if c > 0
        ]
        return torch.logsumexp(torch.stack(terms), dim=0)

    def uses_features(self) -> bool:
        return any(s.uses_features() for s in self.samplers)

    def set_similarity(self, similarity: Tensor) -> None:
        for s in self.samplers:
            s.set_similarity(similarity)

    def should_refresh(self, epoch: int) -> bool:
        return any(s.should_refresh(epoch) for s in self.samplers)

    def refresh(self, features: Tensor) -> None:
        for s in self.samplers:
            if s.uses_features():
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
        ramp = f", ramp over epochs {self.ramp[0]}-{self.ramp[1]}" if self.ramp else ""
        return (
            " + ".join(
                f"{f:g} x [{s.describe()}]" for s, f in zip(self.samplers, self.base_fractions, strict=True)
            )
            + ramp
        )


def _component(comp: Sequence[Any], labels: Tensor | None) -> tuple[SamplerBase, float]:
    """``(sampler, fraction)`` from a built sampler or from ``(name, fraction[, options])``."""
    if len(comp) not in (2, 3):
        raise ValueError(f"mixture component must be (sampler or name, fraction[, options]), got {comp!r}")
    first, fraction = comp[0], comp[1]
    if isinstance(first, SamplerBase):
        return first, fraction
    if first == "mixture":
        raise ValueError("a mixture cannot contain another mixture; list its components directly")
    if labels is None:
        raise ValueError(f"mixture component {first!r} is given by name: pass labels to build it")
    options = dict(comp[2]) if len(comp) == 3 else {}
    return SAMPLERS.build(first, labels=labels, **options), fraction
