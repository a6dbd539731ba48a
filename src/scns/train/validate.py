"""Reject an invalid configuration before any data is loaded or any model is built."""

from __future__ import annotations

from scns.config import Config, ConfigError
from scns.train.schedule import SCHEDULES


def validate_config(config: Config) -> None:
    """Raise :class:`ConfigError` (or ``UnknownNameError`` listing valid names) for the first problem found."""
    from scns.data import get_spec
    from scns.models import MODELS

    get_spec(config.data.dataset)  # unknown dataset -> UnknownNameError listing the choices
    MODELS.get(config.model.name)  # unknown model -> UnknownNameError listing the choices
    _positive("data.batch_size", config.data.batch_size)
    _positive("data.eval_batch_size", config.data.eval_batch_size)
    _positive("train.epochs", config.train.epochs)
    _positive("train.log_every", config.train.log_every)
    _positive("train.eval_every", config.train.eval_every)
    if config.train.max_steps_per_epoch is not None:
        _positive("train.max_steps_per_epoch", config.train.max_steps_per_epoch)
    if config.train.skip_nonfinite < 0:
        raise ConfigError(f"train.skip_nonfinite must be >= 0, got {config.train.skip_nonfinite}")
    optim = config.optim
    if optim.schedule not in SCHEDULES:
        raise ConfigError(f"unknown optim.schedule '{optim.schedule}'. Valid choices: {', '.join(SCHEDULES)}")
    if not optim.lr > 0:
        raise ConfigError(f"optim.lr must be > 0, got {optim.lr}")
    if optim.weight_decay < 0 or optim.momentum < 0:
        raise ConfigError("optim.weight_decay and optim.momentum must be >= 0")
    if optim.nesterov and optim.momentum == 0:
        raise ConfigError("optim.nesterov needs optim.momentum > 0")
    if not 0 <= optim.label_smoothing < 1:
        raise ConfigError(f"optim.label_smoothing must be in [0, 1), got {optim.label_smoothing}")
    if not 0 < optim.pct_start < 1:
        raise ConfigError(f"optim.pct_start must be in (0, 1), got {optim.pct_start}")
    if optim.warmup_epochs < 0:
        raise ConfigError(f"optim.warmup_epochs must be >= 0, got {optim.warmup_epochs}")
    if any(m <= 0 for m in optim.milestones):
        raise ConfigError(f"optim.milestones must be positive epochs, got {list(optim.milestones)}")


def _positive(key: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")
