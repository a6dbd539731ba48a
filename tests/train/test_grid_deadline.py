"""A grid worker with a deadline starts only the cells whose estimated training time fits before it."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from digits_runs import DIGITS_TINY, digits_config

from scns.commands.grid import parse_deadline
from scns.config import Config
from scns.rundir import RunDir
from scns.runinfo import Machine
from scns.train.cell_time import MARGIN, STARTUP_S, current_machine, estimate_cell_seconds
from scns.train.claims import CellClaim
from scns.train.grid import grid_listing, run_grid
from scns.train.protocols import Cell

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

UNIFORM = {**DIGITS_TINY, "contrast.sampler": "uniform"}


def _cell(name: str, seed: int, **overrides) -> Cell:
    return Cell(name, ("t",), "uniform", seed, {**UNIFORM, **overrides, "train.seed": seed})


HERE = current_machine("cpu")


def _fake_run(
    run_dir: Path,
    epoch_times: list[float],
    finished: bool = True,
    machine: Machine = HERE,
    loads: list[float] | None = None,
    **overrides,
) -> None:
    """A run directory as the engine leaves it, with the given per-epoch times on ``machine`` (no training)."""
    run_dir.mkdir(parents=True)
    files = RunDir(run_dir)
    digits_config(**{"contrast.sampler": "uniform", **overrides}).save(files.config)
    records = [
        {"epoch": i, "epoch_time_s": t, "step_time_s": t / 2, **asdict(machine)}
        for i, t in enumerate(epoch_times)
    ]
    for record, load in zip(records, loads or []):
        record["load_avg_1m"] = load
    files.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        files.summary.write_text(json.dumps({"final_top1": 50.0, "best_top1": 50.0, "final_top5": 90.0}))


def test_estimate_from_finished_runs_of_the_same_step_cost(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "a-s0", [10.0, 30.0])
    _fake_run(runs / "b-s0", [20.0, 20.0])
    _fake_run(runs / "other-k", [999.0, 999.0], **{"contrast.negatives": 32})  # another step cost
    _fake_run(runs / "unfinished", [999.0], finished=False)  # not finished: not a basis
    estimate = estimate_cell_seconds(digits_config(**{"contrast.sampler": "uniform"}), runs / "new", runs)
    # 2 epochs to train x the median of the 4 matching epoch times (10, 20, 20, 30)
    assert estimate.seconds == pytest.approx(STARTUP_S + MARGIN * 2 * 20.0)
    assert "2 finished run(s) of the same step cost: a-s0, b-s0" in estimate.basis


def test_estimate_prefers_the_quiet_epochs(tmp_path):
    runs = tmp_path / "runs"
    # one epoch with the cores to itself, two that shared them (load far above the cores)
    _fake_run(runs / "u-s0", [100.0, 300.0, 300.0], loads=[0.5, 50.0, 50.0], **{"train.epochs": 3})
    config = digits_config(**{"contrast.sampler": "uniform"})
    assert estimate_cell_seconds(config, runs / "new", runs).seconds == pytest.approx(
        STARTUP_S + MARGIN * 2 * 100.0
    )


def test_estimate_falls_back_to_another_sampler_then_to_none(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "u-s0", [40.0, 40.0])
    topk = digits_config(**{"contrast.sampler": "class_topk", "contrast.top_k": 2})
    estimate = estimate_cell_seconds(topk, runs / "new", runs)
    assert estimate.seconds == pytest.approx(STARTUP_S + MARGIN * 2 * 40.0)
    assert "same cost but the sampler" in estimate.basis
    more_negatives = digits_config(**{"contrast.sampler": "uniform", "contrast.negatives": 128})
    assert estimate_cell_seconds(more_negatives, runs / "new", runs).seconds is None


@pytest.mark.parametrize(
    "other",
    [
        replace(HERE, cpu_capability="another ISA"),
        replace(HERE, device_type="cuda"),
        replace(HERE, torch_threads=HERE.torch_threads + 1),
        replace(HERE, cpu_count=(HERE.cpu_count or 1) + 1),
    ],
)
def test_only_epochs_timed_on_this_kind_of_machine_count(tmp_path, other):
    runs = tmp_path / "runs"
    _fake_run(runs / "elsewhere", [5.0, 5.0], machine=other)
    config = digits_config(**{"contrast.sampler": "uniform"})
    assert estimate_cell_seconds(config, runs / "new", runs, HERE).seconds is None
    _fake_run(runs / "here", [50.0, 50.0])
    assert estimate_cell_seconds(config, runs / "new", runs, HERE).seconds == pytest.approx(
        STARTUP_S + MARGIN * 2 * 50.0
    )
    # and a run logged before the machine fields existed matches no machine
    legacy = runs / "legacy"
    _fake_run(legacy, [1.0, 1.0])
    lines = [json.loads(line) for line in RunDir(legacy).metrics.read_text().splitlines()]
    RunDir(legacy).metrics.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k not in asdict(HERE)}) + "\n" for r in lines)
    )
    assert estimate_cell_seconds(config, runs / "new", runs, HERE).seconds == pytest.approx(
        STARTUP_S + MARGIN * 2 * 50.0
    )


def test_estimate_of_a_resumed_cell_counts_its_own_epochs_left(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs / "u-s0", [500.0, 500.0])
    config = digits_config(**{"contrast.sampler": "uniform", "train.epochs": 4})
    _fake_run(runs / "mine", [7.0, 9.0], finished=False, **{"train.epochs": 4})
    # without a checkpoint its epochs are not resumed: the run starts over, 4 epochs at u-s0's rate
    assert estimate_cell_seconds(config, runs / "mine", runs).seconds == pytest.approx(
        STARTUP_S + MARGIN * 4 * 500.0
    )
    RunDir(runs / "mine").last_checkpoint.parent.mkdir(parents=True, exist_ok=True)
    RunDir(runs / "mine").last_checkpoint.write_bytes(b"")
    estimate = estimate_cell_seconds(config, runs / "mine", runs)
    assert estimate.seconds == pytest.approx(STARTUP_S + MARGIN * 2 * 8.0)
    assert estimate.basis == "its own 2 epochs"


def test_worker_defers_cells_that_would_not_finish_and_runs_those_that_would(tmp_path):
    grid = tmp_path / "grid"
    runs = grid / "runs"
    done, todo, unknown = _cell("u-s0", 0), _cell("u-s1", 1), _cell("k-s0", 0, **{"contrast.negatives": 32})
    _fake_run(runs / done.name, [30.0, 30.0])  # a finished cell of todo's step cost: 2 x 30 s an epoch
    cells = [done, todo, unknown]

    lines: list[str] = []
    status = run_grid(cells, grid, log=lines.append, deadline=time.time() + 60.0)
    assert status["finished"] == [] and status["skipped"] == [done.name]
    assert set(status["deferred"]) == {todo.name, unknown.name}
    assert (
        "needs ~3 min (1 finished run(s) of the same step cost: u-s0), 1 min left"
        in status["deferred"][todo.name]
    )
    assert status["deferred"][unknown.name].startswith(
        "no estimate (no epochs of the same step cost timed on"
    )
    assert not (runs / todo.name / "config.yaml").exists()  # nothing of a deferred cell was started
    assert CellClaim.acquire(runs / todo.name) is not None  # and its claim was given back

    status = run_grid(cells, grid, only=todo.name, log=lines.append, deadline=time.time() + 3600.0)
    assert status["finished"] == [todo.name] and status["deferred"] == {}


def test_a_worker_stops_waiting_on_another_workers_cell_once_the_deadline_has_passed(tmp_path):
    grid = tmp_path / "grid"
    cell = _cell("u-s0", 0)
    with CellClaim.acquire(grid / "runs" / cell.name):  # another worker holds it
        started = time.perf_counter()
        status = run_grid([cell], grid, log=lambda _: None, poll_s=30.0, deadline=time.time() - 1.0)
    assert time.perf_counter() - started < 10.0  # no 30 s poll
    assert status["deferred"] == {cell.name: "the deadline passed while it waited on another worker"}


NOW = datetime.datetime(2026, 12, 7, 15, 10, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17:30", datetime.datetime(2026, 12, 7, 17, 30)),
        ("09:05", datetime.datetime(2026, 12, 8, 9, 5)),  # passed today: tomorrow's
        ("15:10", datetime.datetime(2026, 12, 8, 15, 10)),  # this minute has begun: tomorrow's
        ("90m", NOW + datetime.timedelta(minutes=90)),
        ("2.5h", NOW + datetime.timedelta(hours=2.5)),
        ("1h30m", NOW + datetime.timedelta(minutes=90)),
        ("45s", NOW + datetime.timedelta(seconds=45)),
    ],
)
def test_parse_deadline_accepts_clock_times_and_durations(text, expected):
    assert parse_deadline(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "x", "25:00", "12:61", "1d", "h", "90"])
def test_parse_deadline_rejects_anything_else_naming_the_forms(text):
    with pytest.raises(ValueError, match="HH:MM"):
        parse_deadline(text, NOW)


def test_listing_gives_each_open_cell_its_estimate_and_the_total(tmp_path):
    grid = tmp_path / "grid"
    done, todo, unknown = _cell("u-s0", 0), _cell("u-s1", 1), _cell("k-s0", 0, **{"contrast.negatives": 32})
    _fake_run(grid / "runs" / done.name, [30.0, 30.0])
    lines = grid_listing([done, todo, unknown], grid)
    minutes = (STARTUP_S + MARGIN * 2 * 30.0) / 60
    assert lines[0].startswith("done  u-s0") and "[" not in lines[0]
    assert lines[1].startswith("todo  u-s1") and lines[1].endswith(f"[~{minutes:.0f} min]")
    assert lines[2].startswith("todo  k-s0") and lines[2].endswith("[no estimate]")
    assert lines[3] == (
        f"2 cell(s) left: ~{minutes / 60:.1f} worker-hours estimated, 1 without an estimate "
        "(no epochs of the same step cost timed on this kind of machine)"
    )


def test_listing_reads_each_finished_runs_config_once(tmp_path, monkeypatch):
    grid = tmp_path / "grid"
    cells = [_cell(f"u-s{seed}", seed) for seed in range(4)]
    _fake_run(grid / "runs" / cells[0].name, [30.0, 30.0])
    _fake_run(grid / "runs" / "other-k", [50.0, 50.0], **{"contrast.negatives": 32})
    loaded: list[Path] = []
    real_load = Config.load.__func__

    def counting_load(cls, path, *args, **kwargs):
        loaded.append(Path(path))
        return real_load(cls, path, *args, **kwargs)

    monkeypatch.setattr(Config, "load", classmethod(counting_load))
    lines = grid_listing(cells, grid)
    assert all(line.endswith(f"[~{(STARTUP_S + MARGIN * 2 * 30.0) / 60:.0f} min]") for line in lines[1:4])
    # other-k is no cell of the listing: only the search for finished runs reads it, once for all 3 open cells
    assert [p.parent.name for p in loaded].count("other-k") == 1
    # a finished cell of the listing: read once, and not again to mark it done
    assert [p.parent.name for p in loaded].count("u-s0") == 1
