"""The layout of a run directory, named once: the trainer writes these files, the grid, the report
and the benchmarks read them, and a user finds the same names on disk.

    <run>/config.yaml              the resolved config; ``--resume`` reloads it
    <run>/metrics.jsonl            one JSON record per finished epoch
    <run>/summary.json             written when the run finishes: accuracy, timing, code provenance
    <run>/checkpoints/last.pt      the latest epoch (atomic; what a resume starts from)
    <run>/checkpoints/best.pt      the epoch with the best test top-1 so far
    <run>/cell.json                grid runs only: the grid cell the run belongs to
    <run>/error.txt                grid runs only: the traceback of the last failed attempt
    <run>/.claim                   grid runs only: the lock of the process running it

This module imports nothing from scns, so every layer may use it.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_NAME = "config.yaml"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT_NAME = "last.pt"
BEST_CHECKPOINT_NAME = "best.pt"


class RunDir:
    """Paths of the files in one run directory (nothing is created or read here)."""

    __slots__ = ("root",)

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT_NAME

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT_NAME

    def nonfinite_checkpoint(self, epoch: int, step: int) -> Path:
        """Where the model state before a non-finite loss is kept for diagnosis."""
        return self.checkpoints / f"nonfinite-epoch{epoch}-step{step}.pt"

    @property
    def cell(self) -> Path:
        return self.root / "cell.json"

    @property
    def error(self) -> Path:
        return self.root / "error.txt"

    @property
    def claim(self) -> Path:
        return self.root / ".claim"
