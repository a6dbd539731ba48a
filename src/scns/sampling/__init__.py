"""Negative sampling: where a contrastive objective's negatives come from.

Samplers (registry ``SAMPLERS``): "uniform", "class_topk", "sample_topk", "mixture".
Negative transforms (registry ``NEGATIVE_TRANSFORMS``): "latent_mixup".
"""

from scns.registry import import_submodules
from scns.sampling.base import NegativeSampler, SamplerBase
from scns.sampling.class_index import ClassIndex
from scns.sampling.class_topk import ClassTopKSampler
from scns.sampling.mixture import MixtureSampler, split_counts
from scns.sampling.mixup import LatentMixup
from scns.sampling.registry import NEGATIVE_TRANSFORMS, SAMPLERS, build_sampler
from scns.sampling.sample_topk import SampleTopKSampler, knn_other_class
from scns.sampling.uniform import UniformSampler

__all__ = [
    "NEGATIVE_TRANSFORMS",
    "SAMPLERS",
    "ClassIndex",
    "ClassTopKSampler",
    "LatentMixup",
    "MixtureSampler",
    "NegativeSampler",
    "SampleTopKSampler",
    "SamplerBase",
    "UniformSampler",
    "build_sampler",
    "knn_other_class",
    "split_counts",
]

# every module registers what it defines: a new one is one file in this package
import_submodules(__name__, __path__)
