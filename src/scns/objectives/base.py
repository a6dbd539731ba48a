"""What every objective returns from one step."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class StepOutput:
    """Result of ``Objective.forward(batch)``.

    Attributes:
        loss: scalar tensor to back-propagate (the weighted sum of ``parts``).
        parts: named loss terms, each a scalar tensor already weighted, for logging.
        logits: [B, C] class scores of the trained model, for accuracy metrics.
        stats: optional detached diagnostics (e.g. mean anchor-negative similarity), scalars.
    """

    loss: Tensor
    parts: dict[str, Tensor]
    logits: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)
