"""scns: semantically conditioned negative sampling for contrastive learning and distillation.

The parts a training loop composes, importable from the top level (loaded on first use, so
``import scns`` stays instant)::

    import scns
    term = scns.ContrastiveNegatives(labels=train_labels, dim=128, class_names=names,
                                     sampler="class_topk", similarity="glove", top_k=10)
    model = scns.create_model("resnet20", num_classes=100)

``ContrastiveNegatives`` (bank + sampler + loss in one module), the samplers (``build_sampler``,
``UniformSampler``, ``ClassTopKSampler``, ``SampleTopKSampler``, ``MixtureSampler``, ``LatentMixup``),
``MemoryBank``, the losses (``InfoNCELoss``, ``NCELoss``, ``KDLoss``), ``class_similarity`` /
``load_similarity``, the models (``create_model``, ``list_models``), ``ContrastConfig``, and the
subpackages ``sampling``, ``losses``, ``similarity``, ``models``, ``data``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ContrastiveNegatives": "scns.api",
    "ContrastConfig": "scns.config",
    "MemoryBank": "scns.memory",
    "build_sampler": "scns.sampling",
    "UniformSampler": "scns.sampling",
    "ClassTopKSampler": "scns.sampling",
    "SampleTopKSampler": "scns.sampling",
    "MixtureSampler": "scns.sampling",
    "LatentMixup": "scns.sampling",
    "SAMPLERS": "scns.sampling",
    "InfoNCELoss": "scns.losses",
    "NCELoss": "scns.losses",
    "KDLoss": "scns.losses",
    "LOSSES": "scns.losses",
    "class_similarity": "scns.similarity",
    "load_similarity": "scns.similarity",
    "create_model": "scns.models",
    "list_models": "scns.models",
}
_SUBPACKAGES = ("sampling", "losses", "similarity", "models", "data")

__all__ = ["__version__", *_EXPORTS, *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"scns.{name}")
    else:
        raise AttributeError(f"module 'scns' has no attribute '{name}'")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
