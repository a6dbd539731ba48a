"""The report marks timings taken while other work shared the CPU."""

from __future__ import annotations

from scns.report.collect import contended
from scns.report.markdown import accuracy_table


def test_contended_compares_each_epochs_load_with_the_runs_threads() -> None:
    quiet = [{"load_avg_1m": 2.3, "torch_threads": 2}, {"load_avg_1m": 1.9, "torch_threads": 2}]
    busy = [{"load_avg_1m": 2.3, "torch_threads": 2}, {"load_avg_1m": 2.6, "torch_threads": 2}]
    assert contended(quiet, "cpu") is False
    assert contended(busy, "cpu") is True
    assert contended([{"load_avg_1m": 1.6, "torch_threads": 1}], "cpu") is True
    assert contended([{"epoch_time_s": 3.0}], "cpu") is None  # logged before load averages were
    assert contended(busy, "cuda") is None


def _run(method: str, seed: int, flag: bool | None) -> dict:
    return {
        "method": method,
        "seed": seed,
        "negatives": None,
        "final_top1": 50.0 + seed,
        "train_time_s": 600.0,
        "step_time_s": 0.1,
        "contended": flag,
        "device": "cpu",
    }


def test_table_marks_methods_with_a_contended_or_unknown_run() -> None:
    table = accuracy_table(
        "supervised",
        [_run("uniform", 0, False), _run("uniform", 1, False), _run("kd", 0, True), _run("kd", 1, False)]
        + [_run("student", 0, None), _run("student", 1, False)],
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert rows["uniform"].endswith("| 10.0 |")
    assert rows["kd"].endswith("| 10.0 * |")
    assert rows["student"].endswith("| 10.0 ? |")
