"""InfoNCE: softmax cross-entropy of the positive against its negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scns.losses.registry import LOSSES


@LOSSES.register("infonce")
class InfoNCELoss(nn.Module):
    """Mean over anchors of ``-log softmax([s_pos, s_1..s_K] / T)[0]``.

    Args:
        temperature: T > 0.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, pos_scores: Tensor, neg_scores: Tensor, log_ratio: Tensor | None = None) -> Tensor:
        """pos_scores [B] and neg_scores [B, K] -> scalar loss.

        ``log_ratio`` [B, K] (optional, no grad): beta * log(q / u) of each negative (its proposal q
        against the uniform proposal u, scaled by beta in [0, 1]), subtracted from its logit as in
        sampled softmax: with beta = 1, ``sum_k exp(s_k / T - log(q_k / u_k))`` is an unbiased
        estimate of the sum the loss would see with K uniform negatives, restricted to the ids q can
        draw (all of them for a proposal with a uniform part); beta = 0 (or None) is the plain
        InfoNCE over the drawn negatives.
        """
        if pos_scores.dim() != 1 or neg_scores.dim() != 2 or neg_scores.shape[0] != pos_scores.shape[0]:
            raise ValueError(
                f"expected pos_scores [B] and neg_scores [B, K], got {tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}"
            )
        neg_logits = neg_scores / self.temperature
        if log_ratio is not None:
            neg_logits = neg_logits - log_ratio.to(neg_logits.dtype)
        logits = torch.cat([pos_scores.unsqueeze(1) / self.temperature, neg_logits], dim=1)
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
