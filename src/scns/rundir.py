"""The layout of a run directory, named once: the trainer writes these files, the grid, the report
and the benchmarks read them, and a user finds the same names on disk.

    <run>/config.yaml              the resolved config; ``--resume`` reloads it
    <run>/metrics.jsonl            one JSON record per finished epoch
    <run>/summary.json             written when the run finishes: accuracy, timing, code provenance
    <run>/checkpoints/last.pt      the latest epoch (atomic; what a resume starts from)
    <run>/checkpoints/best.pt      the epoch with the best test top-1 so far
    <run>/history.jsonl            one JSON record per resume: when, and which options changed
    <run>/.lock                    held (flock) by the one process writing the run; gone after a clean exit
    <run>/cell.json                grid runs only: the grid cell the run belongs to
    <run>/error.txt                grid runs only: the traceback of the last failed attempt
    <run>/.claim                   grid runs only: the lock of the grid worker running it

This module imports nothing from scns, so every layer may use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scns.errors import ScnsError


def file_slug(text: str) -> str:
    """``text`` as a file name on any system: every character but letters, digits, ``.`` and ``_``
    becomes ``-`` (``"digits:size=16"`` -> ``"digits-size-16"``), so names made of option strings
    hold no path separator, no drive colon and nothing a Markdown link would read as a URL scheme."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._") else "-" for c in text).strip("-")


CONFIG_NAME = "config.yaml"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT_NAME = "last.pt"
BEST_CHECKPOINT_NAME = "best.pt"


class RunDirError(ScnsError, ValueError):
    """A run directory cannot be used as asked: another process writes it, or one of its files is
    damaged. The message names the directory or file and what to do."""


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
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def cell(self) -> Path:
        return self.root / "cell.json"

    @property
    def error(self) -> Path:
        return self.root / "error.txt"

    @property
    def claim(self) -> Path:
        return self.root / ".claim"


def read_json_lines(path: str | Path) -> tuple[list[dict[str, Any]], bool]:
    """The records of a JSON-lines file (``metrics.jsonl``, ``history.jsonl``) and whether its last
    line was torn (a process killed or a disk filled while writing it; that line is left out).

    A missing file has no records. Raises :class:`RunDirError` naming the file and line when a line
    before the last is damaged (that is no torn write: the file was edited or corrupted).
    """
    path = Path(path)
    if not path.exists():
        return [], False
    lines = path.read_bytes().split(b"\n")
    records: list[dict[str, Any]] = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"a {type(record).__name__}, not a JSON object")
        except ValueError as err:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            if number == last:
                return records, True
            raise RunDirError(
                f"{path} line {number + 1} is damaged ({err}); repair or delete that line"
            ) from None
        records.append(record)
    return records, False
