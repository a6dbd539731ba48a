"""Registries so a config string builds a sampler or a negative transform."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from scns.registry import Registry
from scns.sampling.base import SamplerBase

SAMPLERS: Registry[SamplerBase] = Registry("sampler")
NEGATIVE_TRANSFORMS: Registry[Any] = Registry("negative transform")


def build_sampler(name: str, labels: Tensor, **options: Any) -> SamplerBase:
    """Build the sampler registered as ``name`` over training labels [N] with its options."""
    return SAMPLERS.build(name, labels=labels, **options)
