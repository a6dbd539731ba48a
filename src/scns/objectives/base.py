"""What an objective is, and what it returns from one step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
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
        #: set by the engine before each step: compute the step's diagnostics (``StepOutput.stats``)
        #: only when True, so they cost nothing on the steps between logging intervals
        self.diagnose = True
        self._banks_prefilled = False

    def reference_bank(self) -> Tensor | None:
        """[N, D] memory bank that sample tables and adaptive class similarities are built from (the
        space the anchors are contrasted in); None for objectives without negatives."""
        return None

    def fill_banks(self, batch: Batch) -> None:
        """Write one un-augmented batch's embeddings into the memory banks (no grad); see
        :meth:`prefill_banks`. Objectives without banks do nothing."""

    @torch.no_grad()
    def prefill_banks(self, batches: Iterable[Batch]) -> bool:
        """Fill every memory bank before the first step with one pass over the training set.

        Each row is set to its sample's embedding by the current networks (in train mode, so batch
        norm sees batch statistics, with every batch-norm buffer restored afterwards). Returns
        whether there was a bank to fill.
        """
        if self.reference_bank() is None:
            return False
        with _batch_norm_stats_kept(self):
            for batch in batches:
                self.fill_banks(batch)
        self._banks_prefilled = True
        return True

    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        """Called before each epoch with that epoch's random generator (a function of seed and epoch).

        Moves the sampler's schedule and rebuilds what it builds from the reference bank: a sample
        table when due (from epoch 1 on, or from epoch 0 after a prefill: a bank not yet filled is
        noise) and an adaptive class similarity.
        """
        self.generator = generator
        negatives = getattr(self, "negatives", None)
        if negatives is None:
            return
        negatives.start_epoch(epoch)
        bank = self.reference_bank()
        if bank is None or (epoch == 0 and not self._banks_prefilled):
            return
        if negatives.needs_refresh(epoch):
            negatives.refresh(bank)
        negatives.refresh_similarity(bank)

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


@contextlib.contextmanager
def _batch_norm_stats_kept(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in train mode and restore every batch-norm buffer (running stats, counts)
    afterwards, so a pass that only reads embeddings leaves the networks as they were."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
    was_training = module.training
    module.train()
    try:
        yield
    finally:
        for m, buffers in zip(norms, saved, strict=True):
            for k, v in buffers.items():
                getattr(m, k).copy_(v)
        module.train(was_training)
