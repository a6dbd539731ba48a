"""Contrastive and distillation losses (registry ``LOSSES``: "nce", "infonce", "kd")."""

from scns.losses.infonce import InfoNCELoss
from scns.losses.kd import KDLoss
from scns.losses.nce import NCELoss
from scns.losses.registry import LOSSES

__all__ = ["LOSSES", "InfoNCELoss", "KDLoss", "NCELoss"]
