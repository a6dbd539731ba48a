"""What an objective is, and what it returns from one step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from scns.data.batch import Batch


@dataclass
class StepOutput:
    """Result of ``Objective.forward(batch)``.

    Attributes:
        loss: scalar tensor to back-propagate (the sum of ``parts``).
        parts: named loss terms, each a scalar tensor already weighted, for logging.
        logits: [B, C] class scores of the trained model, for accuracy metrics.
        stats: detached scalar diagnostics (e.g. mean anchor-negative similarity).
    """

    loss: Tensor
    parts: dict[str, Tensor]
    logits: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """A training objective around one trained network (``self.model``).

    The engine drives it with a fixed protocol, identical for every method:
    ``on_epoch_start(epoch, generator)`` -> per step ``forward(batch)``, backward, optimizer step,
    ``after_step()`` -> state saved with ``state_dict()``. Anything a method needs to remember
    (memory banks, sampler tables, normalisers) is a buffer or submodule, so it is checkpointed.
    """

    model: nn.Module

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.generator: torch.Generator | None = None

    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        """Called before each epoch with that epoch's random generator (a function of seed and epoch)."""
        self.generator = generator
        negatives = getattr(self, "negatives", None)
        if negatives is not None:
            negatives.start_epoch()

    def after_step(self) -> None:
        """Called after the optimizer step (e.g. to update memory banks with detached embeddings)."""

    def epoch_stats(self) -> dict[str, Any]:
        """Per-epoch diagnostics merged into the epoch's metrics line (may sync the device once)."""
        negatives = getattr(self, "negatives", None)
        return negatives.epoch_stats() if negatives is not None else {}

    def summary_info(self) -> dict[str, Any]:
        """Facts about how the run computed its steps, merged into the run's summary.json."""
        return {}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer updates (frozen parts such as a teacher excluded)."""
        return [p for p in self.parameters() if p.requires_grad]

    def forward(self, batch: Batch) -> StepOutput:  # pragma: no cover - interface
        raise NotImplementedError
