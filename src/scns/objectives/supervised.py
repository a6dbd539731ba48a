"""Supervised objective: cross-entropy on the model's logits (plus, later, a contrastive term)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from scns.data.batch import Batch
from scns.objectives.base import Objective, StepOutput


class SupervisedObjective(Objective):
    """Cross-entropy with optional label smoothing.

    Args:
        model: network whose ``forward(x [B,3,H,W])`` gives ``(logits [B,C], features [B,F])``.
        label_smoothing: in [0, 1).
    """

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__(model)
        self.label_smoothing = label_smoothing

    def forward(self, batch: Batch) -> StepOutput:
        logits, _features = self.model(batch.x)
        ce = F.cross_entropy(logits, batch.y, label_smoothing=self.label_smoothing)
        return StepOutput(loss=ce, parts={"ce": ce}, logits=logits)
