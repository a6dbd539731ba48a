"""Where a run's per-epoch metrics go besides ``metrics.jsonl`` (which is always written and stays
the source of truth): ``train.log`` / ``--log`` names the sinks.

``jsonl``: nothing more. ``tensorboard``: every numeric entry of the epoch's line as a scalar
(``train_loss`` -> ``train/loss``, ``test_top1`` -> ``test/top1``, ``lr`` -> ``lr``; step = epoch
number, 1-based) and each ``*_hist`` entry (the hardness histogram ``neg_sim_hist``: counts of
anchor-negative cosines in equal bins over [-1, 1]) as a TensorBoard histogram, under
``RUN_DIR/tensorboard`` (extra ``scns[tensorboard]``). ``jsonl,tensorboard`` is the same as
``tensorboard``. A resumed run drops the events of the epochs it repeats.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from scns.config import ConfigError

LOG_SINKS = ("jsonl", "tensorboard")
TENSORBOARD_DIR = "tensorboard"
INSTALL_HINT = "pip install 'scns[tensorboard]'  (installs tensorboard)"
HIST_RANGE = (-1.0, 1.0)
_SPLITS = ("train_", "test_", "val_")


class EpochLogger(Protocol):
    def log_epoch(self, record: dict[str, Any]) -> None:
        """One epoch's metrics line (``record["epoch"]`` is 0-based)."""
        ...

    def close(self) -> None: ...


def parse_sinks(spec: str) -> list[str]:
    """``"jsonl,tensorboard"`` -> ``["jsonl", "tensorboard"]``; unknown names raise ``ConfigError``."""
    sinks = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in sinks if s not in LOG_SINKS]
    if unknown or not sinks:
        raise ConfigError(
            f"train.log must name sinks from {', '.join(LOG_SINKS)} (comma-separated), got '{spec}'"
        )
    return sinks


class EpochLoggers:
    """The sinks a run writes each epoch line to (besides metrics.jsonl, which the engine writes)."""

    def __init__(self, loggers: list[EpochLogger]) -> None:
        self.loggers = loggers

    def log_epoch(self, record: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_epoch(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def open_loggers(spec: str, run_dir: str | Path, start_epoch: int = 0) -> EpochLoggers:
    """The sinks named by ``spec`` (``train.log``) for the run in ``run_dir``; ``start_epoch``: the
    first epoch this session logs (events of later epochs from an earlier session are dropped)."""
    loggers: list[EpochLogger] = []
    if "tensorboard" in parse_sinks(spec):
        loggers.append(TensorBoardLogger(Path(run_dir) / TENSORBOARD_DIR, purge_step=start_epoch + 1))
    return EpochLoggers(loggers)


def scalar_tag(key: str) -> str:
    """``train_loss`` -> ``train/loss``; keys without a split prefix stay as they are."""
    for prefix in _SPLITS:
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix) :]}"
    return key


def histogram_summary(
    counts: list[float], value_range: tuple[float, float] = HIST_RANGE
) -> dict[str, Any] | None:
    """Arguments of ``SummaryWriter.add_histogram_raw`` for bin ``counts`` over equal bins of
    ``value_range`` (each count placed at its bin's centre); None for an empty histogram."""
    lo, hi = value_range
    n = len(counts)
    total = float(sum(counts))
    if n == 0 or total <= 0:
        return None
    width = (hi - lo) / n
    centres = [lo + (i + 0.5) * width for i in range(n)]
    filled = [i for i, c in enumerate(counts) if c > 0]
    return {
        "min": lo + filled[0] * width,
        "max": lo + (filled[-1] + 1) * width,
        "num": total,
        "sum": sum(c * x for c, x in zip(counts, centres)),
        "sum_squares": sum(c * x * x for c, x in zip(counts, centres)),
        "bucket_limits": [lo + (i + 1) * width for i in range(n)],
        "bucket_counts": [float(c) for c in counts],
    }


class TensorBoardLogger:
    """Writes epoch lines as TensorBoard scalars and histograms (see the module docstring).

    Args:
        log_dir: the event folder (``RUN_DIR/tensorboard``).
        purge_step: events at this step or later from an earlier session are dropped (resume).
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(f"--log tensorboard needs the tensorboard package: {INSTALL_HINT}") from None
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step or None)

    def log_epoch(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"]) + 1
        for key, value in record.items():
            if key == "epoch":
                continue
            if key.endswith("_hist") and isinstance(value, list):
                summary = histogram_summary(value)
                if summary is not None:
                    self.writer.add_histogram_raw(scalar_tag(key), global_step=step, **summary)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(scalar_tag(key), value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
