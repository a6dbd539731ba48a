"""What a run directory says about its run: its metrics and summary, whether it finished, one record.

These queries sit at the bottom of the package beside :mod:`scns.rundir` (the files' names), so both
the grid runner (``scns.train.grid``) and reports (``scns.report``) read runs the same way.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from scns.config import Config
from scns.rundir import CONFIG_NAME, RunDir, RunDirError, read_json_lines

#: Per-epoch diagnostics of the drawn negatives a report plots (metrics keys ``train_<key>``).
DIAGNOSTIC_CURVES = ("gap", "topk_mass", "pseudo_mass", "dup_rate")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The run's per-epoch records. A torn last line (the run was killed, or its disk filled, while
    writing it) is left out with a warning naming the file; a damaged earlier line raises
    :class:`~scns.rundir.RunDirError` naming the file and line."""
    path = RunDir(run_dir).metrics
    records, torn = read_json_lines(path)
    if torn:
        print(
            f"scns: warning: {path}: the last line is torn (the run stopped while writing it) and is "
            f"left out; `scns train --resume {run_dir}` repairs it",
            file=sys.stderr,
        )
    return records


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The run's summary.json; :class:`~scns.rundir.RunDirError` naming the file when it is damaged."""
    path = RunDir(run_dir).summary
    try:
        summary = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise RunDirError(
            f"{path} is damaged ({err}); `scns train --resume {run_dir}` rewrites it, or move the run away"
        ) from None
    if not isinstance(summary, dict):
        raise RunDirError(f"{path} holds a {type(summary).__name__}, not a run summary; move the run away")
    return summary


def finished_config(run_dir: Path) -> Config | None:
    """The run's config if it has finished (a summary exists and the metrics cover every epoch of
    the config), else None."""
    files = RunDir(run_dir)
    if not files.summary.is_file() or not files.config.is_file():
        return None
    config = Config.load(files.config)
    return config if len(read_metrics(run_dir)) == config.train.epochs else None


def is_finished(run_dir: Path) -> bool:
    """Finished: a summary exists and the metrics cover every epoch of the run's config."""
    return finished_config(run_dir) is not None


#: A 1-thread CPU epoch that ran less of its wall time than this waited for a core (or was stopped).
MIN_CPU_SHARE = 0.9


def epoch_contended(epoch: dict[str, Any]) -> bool | None:
    """Whether the run had to share cores in one epoch (None when it logged no load average).

    With the machine's core count logged (``cpu_count``): the 1-minute load average ended above
    max(cores, the run's threads) + 0.5, i.e. more runnable threads than cores, so some thread
    waited (two 1-thread grid workers on 2 cores do not: BENCHMARKS.md s. 8 measured each at the
    speed of one alone). Runs logged before the core count: above the run's own threads + 0.5.

    The load average is read once, at the epoch's end, so it misses sharing that ended more than
    a minute before. A 1-thread run therefore also logs ``cpu_share``, the CPU time its process got
    over the epoch's wall time: a compute-bound thread alone on a core gets nearly all of it, and
    below :data:`MIN_CPU_SHARE` it waited (several threads do not keep a share of 1 even alone).
    """
    load = epoch.get("load_avg_1m")
    if load is None:
        return None
    threads = epoch.get("torch_threads", 1)
    share = epoch.get("cpu_share")
    if threads == 1 and share is not None and share < MIN_CPU_SHARE:
        return True
    cores = epoch.get("cpu_count")
    return load > (max(cores, threads) if cores else threads) + 0.5


def contended(metrics: list[dict[str, Any]], device: str | None) -> bool | None:
    """Whether other work shared the CPU during a CPU run: some epoch was contended (None when no
    epoch logged a load average, or not a CPU run)."""
    flags = [f for f in map(epoch_contended, metrics) if f is not None]
    if device != "cpu" or not flags:
        return None
    return any(flags)


@dataclass(frozen=True)
class Machine:
    """The kind of machine an epoch was timed on, as each epoch logs it: what an epoch's time depends
    on besides the run's options (None: an epoch logged before the field existed)."""

    device_type: str | None  # "cpu", "cuda", ...
    cpu_capability: str | None  # torch's CPU kernel ISA: "AVX2", "AVX512", ...
    cpu_count: int | None  # cores the process may use
    torch_threads: int | None

    @classmethod
    def of_epoch(cls, epoch: dict[str, Any]) -> Machine:
        """The machine a logged epoch (a ``metrics.jsonl`` record) names."""
        return cls(*(epoch.get(field.name) for field in fields(cls)))

    def ran(self, epoch: dict[str, Any]) -> bool:
        """Whether the logged ``epoch`` was trained on this kind of machine."""
        return Machine.of_epoch(epoch) == self

    def describe(self) -> str:
        """``"AVX2, 2 cores, 1 thread"`` (the device first when not a CPU); what was not logged is
        said so."""
        threads = (
            "threads not logged"
            if self.torch_threads is None
            else (f"{self.torch_threads} thread{'s' if self.torch_threads != 1 else ''}")
        )
        if not self.cpu_capability and self.cpu_count is None:
            text = f"{threads}, machine not logged"
        else:
            isa = self.cpu_capability or "CPU kernels not logged"
            cores = "cores not logged" if self.cpu_count is None else f"{self.cpu_count} cores"
            text = f"{isa}, {cores}, {threads}"
        return text if self.device_type in (None, "cpu") else f"{self.device_type}; {text}"


class StepTime(NamedTuple):
    """A run's seconds per training step, which epochs it came from (``source``) and the kind of
    machine they were timed on (``machine``, :meth:`Machine.describe`)."""

    seconds: float
    source: str
    machine: str  # Machine.describe()


def step_time(metrics: list[dict[str, Any]], device: str | None) -> StepTime:
    """Median seconds per training step, which epochs it came from, and the machine they ran on.

    On CPU only epochs known to be uncontended count when there are any ("clean"); otherwise the
    median of all epochs is returned as "contended" (some epoch known to have shared the CPU) or
    "unknown" (no load average logged). Non-CPU runs give "device". The median keeps one slow
    epoch from moving the figure. A step's time depends on the machine and the thread count, and a
    run resumed elsewhere or with other threads mixes them: only the epochs timed on the kind of
    machine most of those epochs ran on are read (a tie goes to the one that ran first).
    """
    if device != "cpu":
        pool, source = metrics, "device"
    else:
        clean = [m for m in metrics if epoch_contended(m) is False]
        if clean:
            pool, source = clean, "clean"
        else:
            pool = metrics
            source = "contended" if any(epoch_contended(m) for m in metrics) else "unknown"
    machine = Counter(map(Machine.of_epoch, pool)).most_common(1)[0][0]
    times = [m["step_time_s"] for m in pool if machine.ran(m)]
    return StepTime(statistics.median(times), source, machine.describe())


def run_record(run_dir: Path, cell: dict[str, Any] | None = None) -> dict[str, Any]:
    """One finished run summarised: grid metadata, config facts, accuracy, curves, negatives' statistics.

    Args:
        cell: grid metadata (name, settings, method, negatives); read from ``cell.json`` when None.
    """
    files = RunDir(run_dir)
    if cell is None:
        cell = json.loads(files.cell.read_text()) if files.cell.exists() else {}
    summary = read_summary(run_dir)
    metrics = read_metrics(run_dir)
    config = Config.load(files.config)
    last = metrics[-1]
    train_time = sum(m["epoch_time_s"] for m in metrics)
    # sampler table (kNN) builds count as sampling: they are the method's cost, not the network's
    sampling = sum(m.get("sampling_time_s", 0.0) + m.get("refresh_time_s", 0.0) for m in metrics)
    step = step_time(metrics, summary.get("device"))
    return {
        "name": cell.get("name", run_dir.name),
        "settings": list(cell.get("settings", [])),
        "method": cell.get("method", run_dir.name),
        "seed": config.train.seed,
        "negatives": cell.get("negatives"),
        "dataset": config.data.dataset,
        "model": config.model.name,
        "objective": config.train.objective,
        "epochs": config.train.epochs,
        "eval_split": config.data.eval_split,  # the split final_top1 was measured on: test or val
        "final_top1": summary["final_top1"],
        "best_top1": summary["best_top1"],
        "final_top5": summary["final_top5"],
        "train_time_s": train_time,
        "step_time_s": step.seconds,
        "step_time_source": step.source,
        "step_machine": step.machine,  # the kind of machine the epochs step_time_s comes from ran on
        "sampling_share": sampling / train_time if train_time else 0.0,
        "contended": contended(metrics, summary.get("device")),
        "neg_sim_first": metrics[0].get("train_neg_sim"),
        "neg_sim": last.get("train_neg_sim"),
        "neg_sim_curve": [m.get("train_neg_sim") for m in metrics],
        "pos_sim_curve": [m.get("train_pos_sim") for m in metrics],
        "topk_share": last.get("train_topk_share"),
        "neg_sim_hist_first": metrics[0].get("neg_sim_hist"),
        "neg_sim_hist": last.get("neg_sim_hist"),
        "curve": [m.get("test_top1", m.get("val_top1")) for m in metrics],
        # diagnostics measured on the logged steps of each epoch (absent in runs that predate them)
        **{f"{key}_curve": [m.get(f"train_{key}") for m in metrics] for key in DIAGNOSTIC_CURVES},
        "diag_se": {key: last.get(f"train_{key}_se") for key in DIAGNOSTIC_CURVES},
        "diag_steps": last.get("train_diag_steps"),
        "err_within_super": last.get("test_err_within_super", last.get("val_err_within_super")),
        "err_across_super": last.get("test_err_across_super", last.get("val_err_across_super")),
        "device": summary.get("device"),
        # the CPU vector ISAs its epochs ran on (runs that predate the field: none)
        "cpu_capabilities": sorted({m["cpu_capability"] for m in metrics if m.get("cpu_capability")}),
        "git_commit": (summary.get("code") or {}).get("git_commit"),
        "source_sha256": (summary.get("code") or {}).get("source_sha256"),
        "run_dir": str(run_dir),
    }


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories under each path: a run directory itself, or a grid directory's ``runs/*``."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such run or grid directory: {path}")
        if RunDir(path).config.is_file():
            found.append(path)
        else:
            found.extend(sorted(p.parent for p in path.glob("**/" + CONFIG_NAME)))
    return found
