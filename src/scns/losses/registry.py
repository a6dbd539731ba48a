"""Registry so a config string builds a loss."""

from __future__ import annotations

from torch import nn

from scns.registry import Registry

LOSSES: Registry[nn.Module] = Registry("loss")
