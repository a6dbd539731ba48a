"""Learning-rate schedules as pure functions of the global step (resume needs no scheduler state)."""

from __future__ import annotations

import bisect
import math

from scns.config import ConfigError, OptimConfig

SCHEDULES = ("multistep", "cosine", "onecycle", "constant")


def steps_per_epoch(batches: int, max_steps_per_epoch: int | None) -> int:
    """Optimiser steps an epoch takes: the loader's ``batches``, capped by ``train.max_steps_per_epoch``."""
    return min(batches, max_steps_per_epoch) if max_steps_per_epoch else batches


def lr_at(step: int, steps_per_epoch: int, epochs: int, optim: OptimConfig) -> float:
    """Learning rate for global ``step`` (0-based) of a run of ``epochs`` x ``steps_per_epoch`` steps.

    - ``multistep``: ``lr * gamma**m`` where m counts milestones <= the current epoch (CRD: 0.05,
      x0.1 at 150/180/210 of 240).
    - ``cosine``: half-cosine from ``lr`` to 0 over the run.
    - ``onecycle``: linear from ``lr/25`` to ``lr`` over ``pct_start`` of the run, then linear to
      ``lr/1e4`` at the end.
    - ``constant``: ``lr``.

    ``warmup_epochs`` (multistep, cosine, constant) ramps linearly from ``lr/steps`` to the
    schedule's value over that many epochs.
    """
    if optim.schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule '{optim.schedule}'. Valid choices: {', '.join(SCHEDULES)}")
    total = max(1, epochs * steps_per_epoch)
    t = min(step, total - 1)
    if optim.schedule == "onecycle":
        peak = max(1, round(optim.pct_start * total))
        start, end = optim.lr / 25.0, optim.lr / 1e4
        if t < peak:
            return start + (optim.lr - start) * t / peak
        return optim.lr + (end - optim.lr) * (t - peak) / max(1, total - 1 - peak)
    if optim.schedule == "multistep":
        epoch = t // steps_per_epoch
        lr = optim.lr * optim.gamma ** bisect.bisect_right(sorted(optim.milestones), epoch)
    elif optim.schedule == "cosine":
        lr = 0.5 * optim.lr * (1.0 + math.cos(math.pi * t / total))
    else:
        lr = optim.lr
    warmup = optim.warmup_epochs * steps_per_epoch
    if warmup and t < warmup:
        lr *= (t + 1) / warmup
    return lr
