"""Supervised objective: cross-entropy plus beta x a memory-bank contrastive term."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from scns.data.batch import Batch
from scns.objectives.base import Objective, StepOutput
from scns.objectives.contrast import BankContrast, Embed
from scns.objectives.negatives import NegativeSource
from scns.sampling import ClassIndex


class SupervisedObjective(Objective):
    """``CE(logits, y) + weight * contrastive(z, bank)``.

    The anchor z is the model's pooled features through a linear head to D dims, L2-normalised.
    Its positive is the bank entry of the same sample (``positive="self"``) or of a random sample
    of the same class (``"class"``); negatives come from ``negatives``. After the optimizer step
    the bank rows of the batch are momentum-updated with the (detached) anchors. Without a
    ``contrast`` (or with weight 0) this is plain cross-entropy.

    Args:
        model: network whose ``forward(x [B,3,H,W])`` gives ``(logits [B,C], features [B,F])``.
        label_smoothing: in [0, 1).
        contrast, negatives, embed: the contrastive term, its negative source and embed head.
        weight: beta.
        positive: "self" or "class".
        train_labels: int64 [N] (needed for ``positive="class"``).
    """

    def __init__(
        self,
        model: nn.Module,
        label_smoothing: float = 0.0,
        contrast: BankContrast | None = None,
        negatives: NegativeSource | None = None,
        embed: Embed | None = None,
        weight: float = 0.0,
        positive: str = "self",
    ) -> None:
        super().__init__(model)
        self.label_smoothing = label_smoothing
        self.contrast, self.negatives, self.embed = contrast, negatives, embed
        self.weight = float(weight)
        self.positive = positive
        self.class_index = (
            ClassIndex(negatives.labels) if (negatives is not None and positive == "class") else None
        )
        self._pending: tuple[Tensor, Tensor] | None = None

    @property
    def contrastive(self) -> bool:
        return self.contrast is not None and self.weight > 0

    def _term(self) -> tuple[BankContrast, NegativeSource, Embed]:
        """The contrastive term's parts (called only when :attr:`contrastive`)."""
        if self.contrast is None or self.negatives is None or self.embed is None:
            raise ValueError("a contrastive term needs its contrast, negatives and embed head")
        return self.contrast, self.negatives, self.embed

    def reference_bank(self) -> Tensor | None:
        return self._term()[0].bank.table if self.contrastive else None

    def fill_banks(self, batch: Batch) -> None:
        contrast, _, embed = self._term()
        _, features = self.model(batch.x)
        contrast.bank.fill(batch.index, embed(features.float()))

    def forward(self, batch: Batch) -> StepOutput:
        logits, features = self.model(batch.x)
        ce = F.cross_entropy(logits.float(), batch.y, label_smoothing=self.label_smoothing)
        if not self.contrastive:
            return StepOutput(loss=ce, parts={"ce": ce}, logits=logits)
        contrast, negatives, embed = self._term()
        z = embed(features.float())  # [B, D]
        if self.class_index is not None:
            pos_idx = self.class_index.sample_from_classes(batch.y, self.generator, validate=False)
        else:
            pos_idx = batch.index
        neg_idx = negatives(batch.index, batch.y, self.generator)  # [B, K]
        log_ratio = negatives.log_ratio(batch.index, batch.y, neg_idx)
        contrastive, scores = contrast(z, pos_idx, neg_idx, self.generator, log_ratio)
        self._pending = (batch.index, z.detach())
        parts = {"ce": ce, "contrast": self.weight * contrastive}
        stats = negatives.diagnostics(batch.y, neg_idx, scores) if self.diagnose else {}
        return StepOutput(loss=ce + parts["contrast"], parts=parts, logits=logits, stats=stats)

    def after_step(self) -> None:
        if self._pending is not None:
            self._term()[0].update(*self._pending)
            self._pending = None
