"""Distillation: a student trained against a frozen teacher (student alone, KD, CRD, CRD+KD)."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scns.data.batch import Batch
from scns.losses import KDLoss
from scns.objectives.base import Objective, StepOutput
from scns.objectives.contrast import BankContrast, Embed
from scns.objectives.negatives import NegativeSource

METHODS = ("student", "kd", "crd", "crd+kd")

# The CRD benchmark's weights per method: (CE, KD, CRD).
DEFAULT_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "student": (1.0, 0.0, 0.0),
    "kd": (0.1, 0.9, 0.0),
    "crd": (1.0, 0.0, 0.8),
    "crd+kd": (1.0, 1.0, 0.8),
}


class DistillObjective(Objective):
    """``ce_weight * CE + kd_weight * KD(student, teacher) + crd_weight * (NCE_s + NCE_t)``.

    CRD (Tian et al.) embeds both networks' pooled features (``embed_s``, ``embed_t``, trainable;
    the teacher's body stays frozen) and keeps one memory bank per side. The student's anchor is
    contrasted against the teacher bank (positive: the same sample's teacher entry) and the
    teacher's anchor against the student bank, with the same negative ids for both directions.
    The teacher stays in eval mode whatever ``train()`` is called with and never gets gradients;
    it runs only when a term needs it (KD or CRD weight non-zero), so ``student`` costs what
    training the student alone costs. ``teacher`` may be a plain network or a
    :class:`~scns.models.frozen.FrozenNet` (its ``mode`` is reported by :meth:`summary_info`).

    Args:
        student, teacher: networks returning ``(logits, features)``.
        ce_weight, kd_weight, crd_weight: loss weights (0 switches a term off).
        kd_temperature: Hinton temperature.
        contrast_s / contrast_t: contrastive terms over the student's / the teacher's memory bank
            (CRD only); the student's anchors are scored against ``contrast_t`` and vice versa.
        embed_s / embed_t: embed heads. negatives: the negative source (CRD only).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        ce_weight: float,
        kd_weight: float,
        crd_weight: float,
        kd_temperature: float = 4.0,
        contrast_s: BankContrast | None = None,
        contrast_t: BankContrast | None = None,
        embed_s: Embed | None = None,
        embed_t: Embed | None = None,
        negatives: NegativeSource | None = None,
    ) -> None:
        super().__init__(student)
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.ce_weight, self.kd_weight, self.crd_weight = (
            float(ce_weight),
            float(kd_weight),
            float(crd_weight),
        )
        self.kd = KDLoss(kd_temperature)
        self.contrast_s, self.contrast_t = contrast_s, contrast_t
        self.embed_s, self.embed_t = embed_s, embed_t
        self.negatives = negatives
        self._pending: tuple[Tensor, Tensor, Tensor] | None = None

    def _crd(self) -> tuple[BankContrast, BankContrast, Embed, Embed, NegativeSource]:
        """The CRD term's parts (called only when ``crd_weight`` is non-zero)."""
        parts = (self.contrast_s, self.contrast_t, self.embed_s, self.embed_t, self.negatives)
        if any(part is None for part in parts):
            raise ValueError("the CRD term needs contrast_s, contrast_t, embed_s, embed_t and negatives")
        return cast(tuple[BankContrast, BankContrast, Embed, Embed, NegativeSource], parts)

    @property
    def uses_teacher(self) -> bool:
        """Whether a step runs the teacher (only the KD and CRD terms read its outputs)."""
        return bool(self.kd_weight or self.crd_weight)

    def summary_info(self) -> dict[str, str]:
        """``teacher_mode``: the frozen-teacher path the steps ran (``unused`` when none did)."""
        mode = getattr(self.teacher, "mode", "eager") if self.uses_teacher else "unused"
        return {"teacher_mode": mode}

    def train(self, mode: bool = True) -> DistillObjective:
        super().train(mode)
        self.teacher.eval()
        return self

    def state_dict(self, *args, **kwargs):  # the teacher is loaded from its own checkpoint, not saved again
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "") + "teacher."
        return type(state)((k, v) for k, v in state.items() if not k.startswith(prefix))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith("teacher.")]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"distill state mismatch: missing {missing}, unexpected {result.unexpected_keys}"
            )
        return type(result)(missing, result.unexpected_keys)

    def forward(self, batch: Batch) -> StepOutput:
        logits, features = self.model(batch.x)
        logits_f = logits.float()
        if self.uses_teacher:
            with torch.no_grad():
                t_logits, t_features = self.teacher(batch.x)
        parts: dict[str, Tensor] = {}
        stats: dict[str, Tensor] = {}
        if self.ce_weight:
            parts["ce"] = self.ce_weight * F.cross_entropy(logits_f, batch.y)
        if self.kd_weight:
            parts["kd"] = self.kd_weight * self.kd(logits_f, t_logits.float())
        if self.crd_weight:
            contrast_s, contrast_t, embed_s, embed_t, negatives = self._crd()
            z_s = embed_s(features.float())
            z_t = embed_t(t_features.float())
            neg_idx = negatives(batch.index, batch.y, self.generator)
            log_ratio = negatives.log_ratio(batch.index, batch.y, neg_idx)
            # Each anchor is contrasted against the other network's bank (CRD).
            loss_s, s_scores = contrast_t(z_s, batch.index, neg_idx, self.generator, log_ratio)
            loss_t, _ = contrast_s(z_t, batch.index, neg_idx, self.generator, log_ratio)
            parts["crd"] = self.crd_weight * (loss_s + loss_t)
            self._pending = (batch.index, z_s.detach(), z_t.detach())
            if self.diagnose:
                stats = negatives.diagnostics(batch.y, neg_idx, s_scores)
        loss = cast(Tensor, sum(parts.values()))  # some weight is non-zero, so parts is not empty
        return StepOutput(loss=loss, parts=parts, logits=logits, stats=stats)

    def reference_bank(self) -> Tensor | None:
        # the student's anchors are contrasted against the teacher's bank: its neighbours and class
        # means are what is hard for the student
        return self._crd()[1].bank.table if self.crd_weight else None

    def fill_banks(self, batch: Batch) -> None:
        contrast_s, contrast_t, embed_s, embed_t, _ = self._crd()
        _, features = self.model(batch.x)
        _, t_features = self.teacher(batch.x)
        contrast_s.bank.fill(batch.index, embed_s(features.float()))
        contrast_t.bank.fill(batch.index, embed_t(t_features.float()))

    def after_step(self) -> None:
        if self._pending is not None:
            index, z_s, z_t = self._pending
            contrast_s, contrast_t, *_ = self._crd()
            contrast_s.update(index, z_s)
            contrast_t.update(index, z_t)
            self._pending = None
