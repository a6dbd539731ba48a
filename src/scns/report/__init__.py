"""Results tables and plots built from run directories only.

``build_report`` loads on first use: it brings the plotting stack (matplotlib, seconds of imports),
which callers of ``collect`` or ``scns.report.stats`` (the grid runner, ``scns demo``) do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scns.report.collect import collect, find_runs, is_finished, run_record

if TYPE_CHECKING:
    from scns.report.markdown import build_report

__all__ = ["build_report", "collect", "find_runs", "is_finished", "run_record"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from scns.report.markdown import build_report

        return build_report
    raise AttributeError(f"module 'scns.report' has no attribute '{name}'")
