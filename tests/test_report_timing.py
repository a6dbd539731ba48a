"""The report marks timings taken while other work shared the CPU."""

from __future__ import annotations

import pytest

from scns.report.collect import contended, method_step_time, step_time
from scns.report.markdown import accuracy_table


def test_contended_compares_each_epochs_load_with_the_runs_threads() -> None:
    quiet = [{"load_avg_1m": 2.3, "torch_threads": 2}, {"load_avg_1m": 1.9, "torch_threads": 2}]
    busy = [{"load_avg_1m": 2.3, "torch_threads": 2}, {"load_avg_1m": 2.6, "torch_threads": 2}]
    assert contended(quiet, "cpu") is False
    assert contended(busy, "cpu") is True
    assert contended([{"load_avg_1m": 1.6, "torch_threads": 1}], "cpu") is True
    assert contended([{"epoch_time_s": 3.0}], "cpu") is None  # logged before load averages were
    assert contended(busy, "cuda") is None


def test_contention_is_judged_against_the_cores_when_they_are_logged() -> None:
    """More runnable threads than cores is contention; two 1-thread workers on 2 cores are not."""
    sibling = {"load_avg_1m": 2.1, "torch_threads": 1, "cpu_count": 2}  # another 1-thread worker
    assert contended([sibling], "cpu") is False
    assert contended([{**sibling, "load_avg_1m": 3.0}], "cpu") is True  # a third thread waits
    assert contended([{"load_avg_1m": 2.1, "torch_threads": 2, "cpu_count": 2}], "cpu") is False
    assert contended([{"load_avg_1m": 2.7, "torch_threads": 2, "cpu_count": 2}], "cpu") is True
    # more threads than cores: the run itself oversubscribes, judged against its own threads
    assert contended([{"load_avg_1m": 4.2, "torch_threads": 4, "cpu_count": 2}], "cpu") is False


def _run(
    method: str, seed: int, flag: bool | None, step_s: float = 0.1, source: str = "clean", threads: int = 1
) -> dict:
    return {
        "step_machine": f"AVX2, 2 cores, {threads} thread{'s' if threads > 1 else ''}",
        "method": method,
        "seed": seed,
        "negatives": None,
        "final_top1": 50.0 + seed,
        "train_time_s": 600.0,
        "step_time_s": step_s,
        "step_time_source": source,
        "contended": flag,
        "device": "cpu",
        "neg_sim_first": 0.05 + 0.01 * seed,
        "neg_sim": 0.2,
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


def _epoch(step_s: float, load: float | None, threads: int = 2) -> dict:
    return {"step_time_s": step_s, "load_avg_1m": load, "torch_threads": threads}


def test_step_time_is_the_median_of_quiet_epochs_only() -> None:
    metrics = [_epoch(0.10, 2.0), _epoch(0.90, 3.4), _epoch(0.12, 2.1), _epoch(0.50, None), _epoch(0.11, 1.9)]
    assert step_time(metrics, "cpu") == (pytest.approx(0.11), "clean", "2 threads, machine not logged")
    busy = [_epoch(0.4, 3.0), _epoch(0.2, None), _epoch(0.3, 2.8)]
    assert step_time(busy, "cpu") == (pytest.approx(0.3), "contended", "2 threads, machine not logged")
    assert step_time([_epoch(0.2, None), _epoch(0.4, None)], "cpu") == (
        pytest.approx(0.3),
        "unknown",
        "2 threads, machine not logged",
    )
    assert step_time([_epoch(0.2, 9.0), _epoch(0.4, 9.0), _epoch(0.1, 9.0)], "cuda") == (
        pytest.approx(0.2),
        "device",
        "2 threads, machine not logged",
    )


def test_method_step_time_prefers_runs_with_quiet_epochs() -> None:
    runs = [_run("ce", 0, True, 0.5, "unknown"), _run("ce", 1, True, 0.1, "clean"), _run("ce", 2, False, 0.2)]
    assert method_step_time(runs) == (pytest.approx(0.15), "", "AVX2, 2 cores, 1 thread")
    assert method_step_time([_run("ce", 0, True, 0.5, "contended"), _run("ce", 1, None, 0.3, "unknown")]) == (
        pytest.approx(0.4),
        " *",
        "AVX2, 2 cores, 1 thread",
    )
    assert method_step_time([_run("ce", 0, None, 0.5, "unknown")]) == (
        pytest.approx(0.5),
        " ?",
        "AVX2, 2 cores, 1 thread",
    )


def test_table_shows_step_time_of_quiet_runs_and_hardness_first_to_last() -> None:
    table = accuracy_table(
        "supervised",
        [
            _run("uniform", 0, False, 0.1),
            _run("uniform", 1, True, 0.3),
            _run("kd", 0, True, 0.4, "contended"),
        ],
    )
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines()[2:]}
    header = [c.strip("| ") for c in table.splitlines()[0].split(" | ")]
    col = header.index("step ms")
    assert rows["uniform"][col] == "200" and rows["kd"][col] == "400 *"
    assert rows["uniform"][header.index("anchor-neg cos, first -> last epoch")] == "0.055 -> 0.200"


def test_code_line_counts_runs_per_commit() -> None:
    from scns.report.markdown import code_line

    records = [
        {"git_commit": "a" * 40, "source_sha256": "f" * 64},
        {"git_commit": "a" * 40},
        {"git_commit": None, "source_sha256": "0123456789abcdef" * 4},
        {"git_commit": None},
        {},
    ]
    assert code_line(records) == (
        "Code commits: aaaaaaa (2 runs), not recorded (2 runs), source sha256 0123456789ab (1 run)."
    )


def test_timing_note_warns_of_shared_gpus_only_for_gpu_runs() -> None:
    from scns.report.markdown import GPU_TIMING_NOTE, TIMING_NOTE, timing_note

    assert timing_note(["cpu"]) == timing_note(["None", "cpu"]) == TIMING_NOTE
    assert timing_note(["cpu", "cuda"]).endswith(GPU_TIMING_NOTE)


def test_a_one_thread_epoch_that_got_too_little_cpu_was_shared_whatever_the_load_says() -> None:
    """The load average is read at the epoch's end: a test run that stopped a minute before, or a
    paused worker, leaves it low, but the 1-thread worker's share of CPU time shows the wait."""
    from scns.runinfo import MIN_CPU_SHARE, epoch_contended

    quiet_end = {"load_avg_1m": 1.8, "torch_threads": 1, "cpu_count": 2}
    assert epoch_contended({**quiet_end, "cpu_share": 0.99}) is False
    assert epoch_contended({**quiet_end, "cpu_share": MIN_CPU_SHARE - 0.01}) is True
    assert epoch_contended(quiet_end) is False  # logged before cpu_share: the load alone decides
    # several threads do not keep a share of 1 even alone: only the load decides for them
    assert epoch_contended({**quiet_end, "torch_threads": 2, "cpu_share": 0.6}) is False
    assert epoch_contended({**quiet_end, "load_avg_1m": 3.0, "cpu_share": 0.99}) is True


def test_a_step_time_reads_epochs_timed_on_one_kind_of_machine() -> None:
    """A run resumed with other threads, or on another machine: its clean epochs on the kind of machine
    most of them ran on, only."""
    logged = {"cpu_capability": "AVX2", "cpu_count": 2}
    mixed = [
        {**_epoch(0.30, 1.5, 1), **logged},
        {**_epoch(0.32, 1.4, 1), **logged},
        {**_epoch(0.20, 2.0), **logged},
        {**_epoch(0.22, 2.1), **logged},
        {**_epoch(0.18, 1.9), **logged},
    ]
    assert step_time(mixed, "cpu") == (pytest.approx(0.20), "clean", "AVX2, 2 cores, 2 threads")
    other_host = [{**_epoch(0.30, 1.5, 1), **logged}, {**_epoch(0.20, 1.0, 1), "cpu_capability": "AVX512"}]
    assert step_time(other_host, "cpu") == (
        pytest.approx(0.30),
        "clean",
        "AVX2, 2 cores, 1 thread",
    )  # first wins a tie
    runs = [_run("ce", 0, False, 0.3), _run("ce", 1, False, 0.5), _run("ce", 2, False, 0.1, threads=2)]
    assert method_step_time(runs) == (pytest.approx(0.4), "", "AVX2, 2 cores, 1 thread")


def test_table_names_the_machine_of_a_row_timed_on_another() -> None:
    table = accuracy_table(
        "supervised",
        [
            _run("uniform", 0, False, 0.5),
            _run("kd", 0, False, 0.2),
            _run("student", 0, False, 0.3, threads=2),
        ],
    )
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines()[2:]}
    col = [c.strip("| ") for c in table.splitlines()[0].split(" | ")].index("step ms")
    assert (rows["uniform"][col], rows["kd"][col]) == ("500", "200")
    assert rows["student"][col] == "300 (AVX2, 2 cores, 2 threads)"


def test_machine_descriptions_say_what_an_epoch_did_not_log() -> None:
    from scns.runinfo import Machine

    full = {"device_type": "cpu", "cpu_capability": "AVX2", "cpu_count": 2, "torch_threads": 1}
    assert Machine.of_epoch(full).describe() == "AVX2, 2 cores, 1 thread"
    assert (
        Machine.of_epoch({**full, "device_type": "cuda", "torch_threads": 4}).describe()
        == "cuda; AVX2, 2 cores, 4 threads"
    )
    assert Machine.of_epoch({"torch_threads": 2}).describe() == "2 threads, machine not logged"
    assert (
        Machine.of_epoch({"cpu_count": 8}).describe() == "CPU kernels not logged, 8 cores, threads not logged"
    )
    assert Machine.of_epoch(full).ran(full) and not Machine.of_epoch(full).ran({**full, "torch_threads": 2})
