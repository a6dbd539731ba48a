"""Run a protocol's grid of runs, resumably: finished runs are skipped, an unfinished one resumes.

Layout of a grid directory::

    DIR/runs/<cell>/       one run directory per cell (files: scns.rundir), with cell.json (its grid
                           metadata) and, after a failed attempt, error.txt
    DIR/results.json       one record per finished cell, rewritten after every cell

``DIR/runs/<cell>/.claim`` is locked by the worker running that cell, so several workers can share
one grid directory. A worker given a deadline starts only the cells whose estimated training time
(:mod:`scns.train.cell_time`) fits before it, and defers the rest to a later invocation.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scns import checkpoint as ckpt
from scns import dist
from scns.config import Config, ConfigError
from scns.errors import ScnsError
from scns.registry import UnknownNameError
from scns.rundir import RunDir, RunDirError
from scns.runinfo import find_runs, is_finished, run_record
from scns.train import distributed as ddp
from scns.train.cell_time import estimate_cell_seconds, finished_runs
from scns.train.claims import CellClaim, claim_holder
from scns.train.engine import Trainer, resolve_device
from scns.train.protocols import Cell
from scns.train.validate import validate_config, validate_data_dir

RESULTS_NAME = "results.json"


class GridStopped(ScnsError):
    """A torchrun grid stopped at a failing cell (its ranks must not run on out of step)."""

    exit_code = 1


SMOKE_OVERRIDES = {"train.epochs": 1, "train.max_steps_per_epoch": 2}


def cell_config(cell: Cell, runs_dir: Path, extra: dict[str, Any]) -> Config:
    """The config of one cell: defaults <- cell overrides <- grid-wide overrides; teacher path filled in."""
    overrides = {**cell.overrides, **extra, "train.name": cell.name, "train.progress": False}
    if cell.depends_on:
        overrides["distill.teacher"] = str(runs_dir / cell.depends_on)
    return Config().with_overrides(overrides)


def run_grid(
    cells: list[Cell],
    out_dir: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    only: str | None = None,
    log: Callable[[str], None] = print,
    poll_s: float = 30.0,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run (or continue) every cell whose name contains ``only`` (all when None).

    Several workers may run the same grid directory at once (one per GPU, or per machine on a
    shared filesystem): each claims a cell before running it (:mod:`scns.train.claims`) and skips
    cells other workers hold; a worker whose remaining cells are all held, or wait on a teacher
    another worker trains, polls every ``poll_s`` seconds until they finish.

    Args:
        overrides: dotted config overrides applied to every cell (e.g. data dir, device, smoke sizes).
        deadline: a ``time.time()`` by which this worker is to be done: a cell is started only when its
            estimated training time fits before it (a cell with no estimate is not started), and a
            worker waiting on other workers' cells stops waiting once it has passed.
    Returns:
        {"finished": [...], "failed": {name: error}, "skipped": [...], "deferred": {name: why}} for
        this invocation.
    """
    out_dir = Path(out_dir)
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    extra = dict(overrides or {})
    by_name = {c.name: c for c in cells}
    selected = [c for c in cells if only is None or only in c.name]
    if not selected:
        raise ConfigError(
            f"--only {only!r} matches none of the {len(cells)} cells (nothing was run); "
            "`scns grid PROTOCOL --out DIR --list` lists their names"
        )
    # teachers a selected cell depends on run first, even when the filter does not name them
    order: list[Cell] = []
    for cell in selected:
        if cell.depends_on and by_name[cell.depends_on] not in order:
            order.append(by_name[cell.depends_on])
        if cell not in order:
            order.append(cell)
    _check_cells(order, runs_dir, extra)
    leader = _join_ranks(extra)
    if not leader:
        log = _quiet
    status: dict[str, Any] = {"finished": [], "failed": {}, "skipped": [], "deferred": {}}
    position = {cell.name: i for i, cell in enumerate(order, 1)}
    pending = order
    while pending:
        waiting: list[Cell] = []
        ran = False
        for cell in pending:
            run_dir = runs_dir / cell.name
            verdict, claim = _verdict(cell, runs_dir, status, extra, deadline) if leader else ("", None)
            verdict = dist.broadcast_object(verdict)  # under torchrun the ranks follow rank 0
            if verdict.startswith("defer:"):
                status["deferred"][cell.name] = verdict.removeprefix("defer:")
                log(f"    deferred {cell.name}: {status['deferred'][cell.name]}")
            elif verdict == "skip":
                status["skipped"].append(cell.name)
            elif verdict == "teacher failed":
                status["failed"][cell.name] = f"its teacher {cell.depends_on} failed"
            elif verdict == "wait":
                waiting.append(cell)  # held by another worker, or its teacher is still training
            else:
                with claim or contextlib.nullcontext():
                    log(f"[{position[cell.name]}/{len(order)}] {cell.name} ({cell.method}, seed {cell.seed})")
                    _run_cell_logged(cell, run_dir, runs_dir, extra, status, log)
                ran = True
                if leader:
                    write_results(out_dir, cells)
        if waiting and not ran and deadline is not None and time.time() >= deadline:
            for cell in waiting:
                status["deferred"][cell.name] = "the deadline passed while it waited on another worker"
            break
        if waiting and not ran:
            log(f"    waiting for {len(waiting)} cell(s) held by other workers")
            time.sleep(poll_s)
        pending = waiting
    if leader:
        write_results(out_dir, cells)
    return status


def _verdict(
    cell: Cell, runs_dir: Path, status: dict[str, Any], extra: dict[str, Any], deadline: float | None
) -> tuple[str, CellClaim | None]:
    """What this worker does with ``cell`` now: "skip" (finished), "teacher failed", "wait" (another
    worker holds it, or its teacher is not finished), "defer:<why>" (it would not finish before the
    deadline) or "run", with the claim held for the run."""
    run_dir = runs_dir / cell.name
    if is_finished(run_dir):
        return "skip", None
    if cell.depends_on and cell.depends_on in status["failed"]:
        return "teacher failed", None
    if cell.depends_on and not is_finished(runs_dir / cell.depends_on):
        return "wait", None
    claim = CellClaim.acquire(run_dir)
    if claim is None:
        return "wait", None
    if is_finished(run_dir):  # another worker finished it since we looked
        claim.release()
        return "skip", None
    if deadline is not None:
        estimate = estimate_cell_seconds(cell_config(cell, runs_dir, extra), run_dir, runs_dir)
        left = deadline - time.time()
        if estimate.seconds is None or estimate.seconds > left:
            claim.release()
            needs = "no estimate" if estimate.seconds is None else f"needs ~{estimate.seconds / 60:.0f} min"
            return f"defer:{needs} ({estimate.basis}), {max(left, 0) / 60:.0f} min left", None
    return "run", claim


def _join_ranks(extra: dict[str, Any]) -> bool:
    """Under torchrun, join the process group before the first cell, so that the ranks act as one
    worker: rank 0 decides and claims, every rank runs the cell. True on the rank that leads (and
    for a single process)."""
    if ddp.env_world_size() <= 1:
        return True
    train = Config().with_overrides(extra).train
    context, _ = ddp.init_distributed(resolve_device(train.device), train.dist_timeout_s)
    return context.is_main


def _quiet(_message: str) -> None:
    """The log of the ranks that follow rank 0: it speaks for the job."""


def _check_cells(cells: list[Cell], runs_dir: Path, extra: dict[str, Any]) -> None:
    """Reject a grid with an invalid cell before its first run, not hours into it."""
    problems = []
    for cell in cells:
        try:
            config = cell_config(cell, runs_dir, extra)
            validate_config(config, check_teacher=False)
            validate_data_dir(config)
        except (ConfigError, UnknownNameError) as err:
            problems.append(f"  {cell.name}: {err}")
    if problems:
        raise ConfigError("invalid grid cells (nothing was run):\n" + "\n".join(problems))


def _run_cell_logged(
    cell: Cell,
    run_dir: Path,
    runs_dir: Path,
    extra: dict[str, Any],
    status: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    """Run one cell, recording the outcome in ``status``; a failure is logged, not raised."""
    started = time.perf_counter()
    try:
        _run_cell(cell, run_dir, runs_dir, extra)
    except Exception as err:  # a failing cell must not stop the grid; it is reported and retried next time
        status["failed"][cell.name] = f"{type(err).__name__}: {err}"
        log(f"    FAILED: {type(err).__name__}: {err}")
        if dist.rank() == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            RunDir(run_dir).error.write_text(traceback.format_exc())
        if dist.active():
            # a rank's failure may leave the others inside a collective: continuing with the next
            # cell would pair up different collectives. Every rank stops (the others by the timeout)
            raise GridStopped(
                f"cell {cell.name} failed on rank {dist.rank()} ({type(err).__name__}: {err}); a torchrun "
                "grid stops at a failing cell so that its ranks stay in step. Fix the cause and run the "
                "same command again: finished cells are kept and the failed one resumes"
            ) from err
    else:
        status["finished"].append(cell.name)
        log(f"    done in {time.perf_counter() - started:.0f} s")


def _run_cell(cell: Cell, run_dir: Path, runs_dir: Path, extra: dict[str, Any]) -> None:
    files = RunDir(run_dir)
    if files.last_checkpoint.exists():
        resume_overrides = [f"{k}={json.dumps(v)}" for k, v in extra.items()]
        trainer = Trainer.resume(run_dir, resume_overrides)
    else:
        config = cell_config(cell, runs_dir, extra)
        run_dir.mkdir(parents=True, exist_ok=True)
        if dist.rank() == 0:
            files.cell.write_text(json.dumps(asdict(cell), indent=2))
        trainer = Trainer.create(config, run_dir)  # create and resume validate the config
    trainer.fit()
    files.error.unlink(missing_ok=True)


def grid_listing(cells: list[Cell], out_dir: str | Path, extra: dict[str, Any] | None = None) -> list[str]:
    """One line per cell (state, name, settings, method; a busy cell's worker; a todo or busy cell's
    estimated minutes to finish, :mod:`scns.train.cell_time`), then a line totalling what is left."""
    runs_dir = Path(out_dir) / "runs"
    lines, left, known, unknown = [], 0, 0.0, 0
    finished_configs = finished_runs(runs_dir)
    finished_dirs = {path for path, _ in finished_configs}
    for cell in cells:
        run_dir = runs_dir / cell.name
        finished = run_dir in finished_dirs
        holder = None if finished else claim_holder(run_dir)
        state = "done" if finished else ("todo" if holder is None else "busy")
        line = f"{state:<5} {cell.name:<60} {','.join(cell.settings):<12} {cell.method}"
        if holder:
            line += f"  (run by {holder.get('host')} pid {holder.get('pid')})"
        if not finished:
            left += 1
            config = cell_config(cell, runs_dir, extra or {})
            estimate = estimate_cell_seconds(config, run_dir, runs_dir, finished=finished_configs)
            if estimate.seconds is None:
                unknown += 1
                line += "  [no estimate]"
            else:
                known += estimate.seconds
                line += f"  [~{estimate.seconds / 60:.0f} min]"
        lines.append(line)
    lines.append(
        f"{left} cell(s) left: ~{known / 3600:.1f} worker-hours estimated"
        + (
            f", {unknown} without an estimate (no epochs of the same step cost timed on this kind of machine)"
            if unknown
            else ""
        )
    )
    return lines


def write_results(out_dir: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    """Every finished run under ``DIR/runs`` into ``DIR/results.json`` (atomically), whichever invocation
    ran it (another ``--only`` filter or ``--seeds`` list); ``cells`` supplies the metadata of this one's."""
    known = {cell.name: asdict(cell) for cell in cells}
    runs = find_runs([out_dir / "runs"]) if (out_dir / "runs").is_dir() else []
    records = []
    for run_dir in runs:
        try:
            if is_finished(run_dir):
                records.append(run_record(run_dir, known.get(run_dir.name)))
        except RunDirError as err:  # one damaged run must not stop the grid; `scns report` names it
            print(f"scns grid: warning: {run_dir} left out of {RESULTS_NAME}: {err}", file=sys.stderr)
    ckpt.atomic_write_bytes(out_dir / RESULTS_NAME, json.dumps(records, indent=1).encode())
    return records
