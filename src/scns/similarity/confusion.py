"""``confusion``: symmetrised, row-normalised confusion of a trained model on its training split.

Two kinds: ``hard`` (default for ``confusion:RUN_DIR``; how often class ``i`` is predicted as
``j``) and ``soft`` (default for ``teacher:confusion``; the mean softmax probability of ``j`` over
class-``i`` samples at a temperature, informative even where a model fits its training set and
hard confusions are mostly zero). Write ``confusion:RUN_DIR:mode=soft:temperature=4``.
"""

from __future__ import annotations

from typing import Any

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


def soft_confusion_similarity(
    logits: Tensor, labels: Tensor, num_classes: int, temperature: float = 1.0
) -> Tensor:
    """``S = (R + R.T) / 2`` with ``R[i, j]`` = mean of ``softmax(logits / T)[:, j]`` over class-``i`` samples.

    Args:
        logits: float [N, C].
        labels: int [N] true class ids; every class needs at least one sample.
        num_classes: C.
        temperature: T > 0.

    Returns:
        float32 [C, C] in [0, 1].
    """
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise SimilarityError(f"logits must be [N, {num_classes}], got {list(logits.shape)}")
    labels = check_labels(labels, logits.shape[0], num_classes, "logit row")
    probs = torch.softmax(logits.to(torch.float64) / temperature, dim=1)
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64).index_add_(0, labels, probs.cpu())
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    require_all_classes(counts)
    rates = sums / counts[:, None]
    return ((rates + rates.T) / 2).to(torch.float32)


MODES = ("hard", "soft")


class ConfusionReducer:
    """Reducer of ``confusion``: hard (argmax) or soft (mean softmax at ``temperature``) confusion."""

    name = "confusion"

    def __init__(self, mode: str = "hard", temperature: float | str = 1.0) -> None:
        if mode not in MODES:
            raise SimilarityError(f"confusion mode must be one of {', '.join(MODES)}, got {mode!r}")
        try:
            self.temperature = float(temperature)
        except ValueError:
            raise SimilarityError(f"confusion temperature must be a number, got {temperature!r}") from None
        if not self.temperature > 0:
            raise SimilarityError(f"confusion temperature must be > 0, got {temperature}")
        self.mode = mode

    def options(self) -> dict[str, Any]:
        return (
            {"mode": self.mode, "temperature": self.temperature} if self.mode == "soft" else {"mode": "hard"}
        )

    def __call__(self, logits: Tensor, features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
        if self.mode == "soft":
            return soft_confusion_similarity(logits, labels, num_classes, self.temperature)
        return confusion_similarity(logits.argmax(1), labels, num_classes)


class ConfusionSimilarity(RunSimilarity):
    """Confusion similarity of a trained run on its training split (``split="test"`` warns)."""

    name = "confusion"
    default_split = "train"

    def __init__(
        self, checkpoint: str, *, mode: str = "hard", temperature: float | str = 1.0, **kwargs: Any
    ) -> None:
        self.reducer = ConfusionReducer(mode, temperature)
        super().__init__(checkpoint, **kwargs)


@register_source("confusion", spec_arg="checkpoint")
def confusion(
    checkpoint: str,
    data_dir: str | None = None,
    split: str | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    mode: str = "hard",
    temperature: float | str = 1.0,
) -> ConfusionSimilarity:
    """Symmetrised confusion of a trained model (a run directory or checkpoint file) on its training split."""
    return ConfusionSimilarity(
        checkpoint,
        mode=mode,
        temperature=temperature,
        data_dir=data_dir,
        split=split,
        batch_size=batch_size,
        device=device,
    )
