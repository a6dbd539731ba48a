"""Read finished runs from their directories (the only input a report has).

The per-run queries live in :mod:`scns.runinfo` (the grid runner uses them too); they are re-exported here.
"""

from __future__ import annotations

from collections import Counter
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


def method_step_time(runs: list[dict[str, Any]]) -> tuple[float | None, str, str | None]:
    """Seconds per step of a method, its mark and the kind of machine it was timed on.

    The mean over the method's runs whose step time comes from quiet epochs (or a GPU), when there
    are any; otherwise over all its runs, marked * (contended) or ? (unknown). Only runs timed on one
    kind of machine (``step_machine``: ISA, cores, threads) are averaged: the kind most of those runs
    had (a tie goes to the first listed).
    """
    trusted = [r for r in runs if r.get("step_time_source") in ("clean", "device")]
    pool = trusted or runs
    if not pool:
        return None, "", None
    machine = Counter(r.get("step_machine") for r in pool).most_common(1)[0][0]
    same = [r for r in pool if r.get("step_machine") == machine]
    mean = sum(r["step_time_s"] for r in same) / len(same)
    if trusted:
        return mean, "", machine
    sources = {r.get("step_time_source") for r in runs}
    return mean, " *" if "contended" in sources else " ?", machine


def collect(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Records of every finished run found under ``paths`` (unfinished runs are left out)."""
    return [run_record(p) for p in find_runs(paths) if is_finished(p)]
