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
        return {"finished": [], "failed": {}, "skipped": []}

    monkeypatch.setattr(grid, "run_grid", fake_run_grid)
    assert main(["grid", "gpu", "--out", str(tmp_path / "g"), "--poll", "2.5"]) == 0
    assert seen["poll_s"] == 2.5
    with pytest.raises(SystemExit, match="--poll must be a positive"):
        main(["grid", "gpu", "--out", str(tmp_path / "g"), "--poll", "0"])
