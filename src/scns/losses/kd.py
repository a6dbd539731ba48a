"""Hinton's knowledge-distillation loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from scns.losses.registry import LOSSES


@LOSSES.register("kd")
class KDLoss(nn.Module):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch.

    Args:
        temperature: T > 0 (4 in the CRD benchmark).
    """

    def __init__(self, temperature: float = 4.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """student_logits, teacher_logits [B, C] -> scalar loss (no gradient into the teacher)."""
        if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
            raise ValueError(
                f"expected student and teacher logits of the same [B, C] shape, got "
                f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
            )
        t = self.temperature
        log_p_s = F.log_softmax(student_logits / t, dim=1)
        log_p_t = F.log_softmax(teacher_logits.detach() / t, dim=1)
        return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
