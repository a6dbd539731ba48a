"""Read finished runs from their directories (the only input a report has).

The per-run queries live in :mod:`scns.runinfo` (the grid runner uses them too); they are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scns.runinfo import (
    DIAGNOSTIC_CURVES,
    contended,
    epoch_contended,
    find_runs,
    is_finished,
    read_metrics,
    read_summary,
    run_record,
    step_time,
)

__all__ = [
    "DIAGNOSTIC_CURVES",
    "collect",
    "contended",
    "epoch_contended",
    "find_runs",
    "is_finished",
    "method_step_time",
    "read_metrics",
    "read_summary",
    "run_record",
    "step_time",
]


def method_step_time(runs: list[dict[str, Any]]) -> tuple[float | None, str]:
    """Seconds per step of a method: the mean over its runs whose step time comes from quiet epochs
    (or a GPU), when there are any; otherwise over all runs, marked * (contended) or ? (unknown)."""
    trusted = [r for r in runs if r.get("step_time_source") in ("clean", "device")]
    if trusted:
        return sum(r["step_time_s"] for r in trusted) / len(trusted), ""
    sources = {r.get("step_time_source") for r in runs}
    mean = sum(r["step_time_s"] for r in runs) / len(runs) if runs else None
    return mean, " *" if "contended" in sources else " ?"


def collect(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Records of every finished run found under ``paths`` (unfinished runs are left out)."""
    return [run_record(p) for p in find_runs(paths) if is_finished(p)]
