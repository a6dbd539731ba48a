"""Several grid workers share one directory: a claimed cell is skipped, waited on, and never run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from digits_runs import DIGITS_TINY

from scns.dist import free_local_port
from scns.train.claims import CellClaim, claim_holder
from scns.train.grid import run_grid
from scns.train.protocols import Cell, budget_cells, distill_cells, merge_cells

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TESTS_TRAIN = Path(__file__).parent


def cells() -> list:
    """2 uniform runs (K=32, seeds {0, 1}), a teacher, and 2 KD students that need it."""
    base = {**DIGITS_TINY, "contrast.top_k": 2}
    budget = [c for c in budget_cells(base, [0, 1], [32], "w") if c.method == "uniform"]
    teacher = Cell("w-teacher", ("teacher",), "teacher", 0, {**base, "train.epochs": 1, "train.seed": 0})
    students = [c for c in distill_cells(teacher, base, [0, 1], 4, "w-kd") if c.method == "kd"]
    return merge_cells([teacher], students, budget)


def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS_TRAIN)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


HOLD = """
    import sys, time
    from scns.train.claims import CellClaim
    claim = CellClaim.acquire(sys.argv[1])
    print("held" if claim else "refused", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_claim_is_exclusive_names_its_holder_and_dies_with_it(tmp_path):
    run_dir = tmp_path / "cell"
    holder = _python(HOLD, str(run_dir), "60")
    assert holder.stdout.readline().strip() == "held"
    assert CellClaim.acquire(run_dir) is None
    assert claim_holder(run_dir)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)  # a killed worker leaves no stale claim
    holder.wait()
    with CellClaim.acquire(run_dir) as mine:
        assert mine is not None and mine.held
        assert claim_holder(run_dir)["pid"] == os.getpid()
        assert CellClaim.acquire(run_dir) is None  # not even twice from one process
    assert claim_holder(run_dir) is None


def test_worker_skips_a_held_cell_waits_and_runs_it_when_released(tmp_path):
    grid = tmp_path / "grid"
    target = cells()[0].name
    holder = _python(HOLD, str(grid / "runs" / target), "3")
    assert holder.stdout.readline().strip() == "held"
    lines: list[str] = []
    started = time.perf_counter()
    status = run_grid(cells(), grid, only=target, log=lines.append, poll_s=0.2)
    holder.wait()
    assert any("waiting for 1 cell" in line for line in lines)
    assert status["finished"] == [target] and time.perf_counter() - started >= 2.0


WORKER = """
    import json, sys
    from test_grid_workers import cells
    from scns.train.grid import run_grid
    print("ready", flush=True)
    status = run_grid(cells(), sys.argv[1], log=lambda _: None, poll_s=0.2)
    print(json.dumps(status), flush=True)
"""


@pytest.mark.slow  # two processes; the claims they split by are tested above, in one
def test_two_workers_split_a_grid_and_run_every_cell_once(tmp_path):
    """One worker in a second process, the other in this one (once the second has started, so they
    run at the same time; a second process imports torch for ~3 CPU-s)."""
    grid = tmp_path / "grid"
    other = _python(WORKER, str(grid))
    assert any(line.strip() == "ready" for line in other.stdout), "the second worker did not start"
    with ThreadPoolExecutor(1) as pool:  # drain its output meanwhile: a full pipe would stall it
        output = pool.submit(other.communicate, timeout=600)
        mine = run_grid(cells(), grid, log=lambda _: None, poll_s=0.2)
        theirs = json.loads(output.result()[0].strip().splitlines()[-1])
    statuses = [mine, theirs]
    ran = [name for s in statuses for name in s["finished"]]
    assert sorted(ran) == sorted(c.name for c in cells())  # every cell once, by one worker
    assert all(not s["failed"] for s in statuses)
    for cell in cells():
        epochs = (grid / "runs" / cell.name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in epochs] == ([0] if cell.method == "teacher" else [0, 1])


def test_grid_command_passes_poll_interval_and_rejects_a_non_positive_one(tmp_path, monkeypatch):
    from scns.cli import main
    from scns.train import grid

    seen = {}

    def fake_run_grid(cells, out, **kwargs):
        seen.update(kwargs)
        return {"finished": [], "failed": {}, "skipped": [], "deferred": {}}

    monkeypatch.setattr(grid, "run_grid", fake_run_grid)
    assert main(["grid", "gpu", "--out", str(tmp_path / "g"), "--poll", "2.5"]) == 0
    assert seen["poll_s"] == 2.5
    with pytest.raises(SystemExit, match="--poll must be a positive"):
        main(["grid", "gpu", "--out", str(tmp_path / "g"), "--poll", "0"])


def _grid_rank(rank: int, port: int, grid: str, fail_on_rank1: str | None) -> None:
    """One rank of a 2-process torchrun-style grid job over :func:`cells` (spawned: fresh process)."""
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": str(rank),
        }
    )
    import torch

    torch.set_num_threads(1)
    import scns.train.grid as grid_module
    from scns.train import distributed as ddp

    if fail_on_rank1 and rank == 1:
        real = grid_module._run_cell

        def run_cell(cell, *args):
            if cell.name == fail_on_rank1:
                raise RuntimeError("injected failure on rank 1")
            return real(cell, *args)

        grid_module._run_cell = run_cell
    lines: list[str] = []
    overrides = {"train.dist_timeout_s": 20, "train.device": "cpu"}
    with ddp.session():
        status = run_grid(cells()[:2], grid, overrides=overrides, log=lines.append, poll_s=0.2)
    Path(grid, f"rank{rank}.json").write_text(json.dumps({"status": status, "log": lines}))


def _launch_grid(grid: Path, fail_on_rank1: str | None = None, timeout: float = 180) -> list[int | None]:
    import multiprocessing

    port = free_local_port()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_grid_rank, args=(r, port, str(grid), fail_on_rank1)) for r in range(2)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f"{len(hung)} rank(s) still running after {timeout} s (the ranks went out of step)"
    return [p.exitcode for p in procs]


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_torchrun_ranks_run_a_grid_as_one_worker(tmp_path):
    """Under torchrun every rank runs every cell together (rank 0 claims it; the others follow),
    each cell once; only rank 0 logs and writes the grid's files."""
    grid = tmp_path / "grid"
    assert _launch_grid(grid) == [0, 0]
    names = [c.name for c in cells()[:2]]
    for rank in (0, 1):
        report = json.loads((grid / f"rank{rank}.json").read_text())
        assert report["status"]["finished"] == names and not report["status"]["failed"]
        assert bool(report["log"]) == (rank == 0)
    for cell in cells()[:2]:
        records = (grid / "runs" / cell.name / "metrics.jsonl").read_text().splitlines()
        epochs = [json.loads(r)["epoch"] for r in records]
        assert epochs == list(range(cell.overrides["train.epochs"]))  # trained once, both ranks together
    assert {r["name"] for r in json.loads((grid / "results.json").read_text())} >= set(names)


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_torchrun_grid_stops_every_rank_at_a_failing_cell(tmp_path):
    """A failure on one rank stops the job on every rank (the others at the collective timeout or
    when the job ends), instead of the ranks running on out of step; the next cell never starts."""
    grid = tmp_path / "grid"
    first, second = (c.name for c in cells()[:2])
    codes = _launch_grid(grid, fail_on_rank1=first)
    assert all(code not in (0, None) for code in codes), codes
    assert not (grid / "runs" / second / "metrics.jsonl").exists()
    assert not (grid / "runs" / second / "cell.json").exists()
