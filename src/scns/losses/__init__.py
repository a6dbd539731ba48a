"""Contrastive and distillation losses (registry ``LOSSES``: "nce", "infonce", "kd")."""

from scns.losses.infonce import InfoNCELoss
from scns.losses.kd import KDLoss
from scns.losses.nce import NCELoss
from scns.losses.registry import LOSSES
from scns.registry import import_submodules

__all__ = ["LOSSES", "InfoNCELoss", "KDLoss", "NCELoss"]

# every module registers what it defines: a new one is one file in this package
import_submodules(__name__, __path__)
