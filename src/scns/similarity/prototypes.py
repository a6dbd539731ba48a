"""``prototypes``: cosine similarity of a trained model's per-class mean features."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from scns.similarity.base import SimilarityError, check_labels, cosine_matrix, require_all_classes
from scns.similarity.model_outputs import RunSimilarity
from scns.similarity.registry import register_source


def class_prototypes(features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Mean of the L2-normalised features of each class.

    Args:
        features: float [N, D].
        labels: int [N] class ids in ``[0, num_classes)``.
        num_classes: C; every class needs at least one sample.

    Returns:
        float32 [C, D] (not renormalised).
    """
    if features.dim() != 2:
        raise SimilarityError(f"features must be [N, D], got {list(features.shape)}")
    labels = check_labels(labels, features.shape[0], num_classes, "feature row")
    unit = F.normalize(features.detach().to(torch.float32), dim=1)
    sums = torch.zeros(num_classes, unit.shape[1], dtype=torch.float32, device=unit.device)
    sums.index_add_(0, labels.to(unit.device), unit)
    counts = torch.bincount(labels, minlength=num_classes).to(unit.device)
    require_all_classes(counts)
    return sums / counts[:, None].to(torch.float32)


def prototype_similarity(features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Cosine between per-class means of L2-normalised features.

    Args:
        features: float [N, D], e.g. a model's pooled features over the training set.
        labels: int [N] class ids.
        num_classes: C.

    Returns:
        float32 [C, C] in [-1, 1] (diagonal 1 before finalisation).
    """
    return cosine_matrix(class_prototypes(features, labels, num_classes))


class PrototypeReducer:
    """Reducer of ``prototypes``: cosine of the per-class means of the features."""

    name = "prototypes"

    def options(self) -> dict[str, Any]:
        return {}

    def __call__(self, logits: Tensor, features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
        return prototype_similarity(features, labels, num_classes)


class PrototypeSimilarity(RunSimilarity):
    """Prototype cosine of a trained run over its training split."""

    name = "prototypes"
    default_split = "train"
    reducer = PrototypeReducer()


@register_source("prototypes", spec_arg="checkpoint")
def prototypes(
    checkpoint: str,
    data_dir: str | None = None,
    split: str | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> PrototypeSimilarity:
    """Class-mean feature cosine of a trained model (a run directory or checkpoint file), training split."""
    return PrototypeSimilarity(
        checkpoint, data_dir=data_dir, split=split, batch_size=batch_size, device=device
    )
