"""Results tables and plots built from run directories only."""

from scns.report.collect import collect, find_runs, is_finished, run_record
from scns.report.markdown import build_report

__all__ = ["build_report", "collect", "find_runs", "is_finished", "run_record"]
