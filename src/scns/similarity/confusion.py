"""``confusion``: symmetrised, row-normalised confusion of a trained model on held-out data."""

from __future__ import annotations

import torch
from torch import Tensor

from scns.similarity.base import SimilarityError, check_labels, require_all_classes
from scns.similarity.model_outputs import RunSimilarity
from scns.similarity.registry import register_source


def confusion_similarity(predictions: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """``S = (R + R.T) / 2`` with ``R[i, j]`` = share of class-``i`` samples predicted as ``j``.

    Args:
        predictions: int [N] predicted class ids.
        labels: int [N] true class ids; every class needs at least one sample.
        num_classes: C.

    Returns:
        float32 [C, C] in [0, 1]; ``S[i, j]`` is how often ``i`` and ``j`` are mistaken for each
        other, each direction weighted by its class's size.
    """
    predictions = torch.as_tensor(predictions)
    if predictions.dim() != 1:
        raise SimilarityError(f"predictions must be [N], got {list(predictions.shape)}")
    predictions = check_labels(predictions, predictions.shape[0], num_classes, "prediction")
    labels = check_labels(labels, predictions.shape[0], num_classes, "prediction")
    counts = torch.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    counts = counts.view(num_classes, num_classes).to(torch.float64)
    row_sums = counts.sum(1)
    require_all_classes(row_sums)
    rates = counts / row_sums[:, None]
    return ((rates + rates.T) / 2).to(torch.float32)


class ConfusionSimilarity(RunSimilarity):
    """Confusion similarity of a trained run on its test split."""

    name = "confusion"
    default_split = "test"

    def from_outputs(self, logits: Tensor, features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
        return confusion_similarity(logits.argmax(1), labels, num_classes)


@register_source("confusion", spec_arg="checkpoint")
def confusion(
    checkpoint: str,
    data_dir: str | None = None,
    split: str | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> ConfusionSimilarity:
    """Symmetrised confusion of a trained model (a run directory or checkpoint file) on held-out data."""
    return ConfusionSimilarity(
        checkpoint, data_dir=data_dir, split=split, batch_size=batch_size, device=device
    )
