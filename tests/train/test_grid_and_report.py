"""Grid runs are resumable and skip finished cells; the report is built from their directories."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
import torch
from digits_runs import DIGITS_TINY

from scns.report import build_report, collect
from scns.train.grid import RESULTS_NAME, run_grid
from scns.train.protocols import (
    Cell,
    budget_cells,
    distill_cells,
    get_protocol,
    merge_cells,
    supervised_cells,
)

BASE = {**DIGITS_TINY, "contrast.top_k": 2}


def tiny_protocol() -> list[Cell]:
    sup = [c for c in supervised_cells(BASE, [0, 1], 64, 8, "d") if c.method in ("cross-entropy", "uniform")]
    budget = [c for c in budget_cells(BASE, [0, 1], [32, 64], "d") if c.method == "uniform"]
    teacher = Cell("d-teacher", ("teacher",), "teacher", 0, {**BASE, "train.epochs": 1, "train.seed": 0})
    dist = [
        c
        for c in distill_cells(teacher, {**BASE, "contrast.negatives": 32}, [0], 4, "d-kd")
        if c.method in ("kd", "crd uniform")
    ]
    return merge_cells(sup, budget, [teacher], dist)


def test_merge_lists_shared_cells_once_with_all_settings():
    cells = tiny_protocol()
    names = [c.name for c in cells]
    assert len(names) == len(set(names))
    shared = next(c for c in cells if c.name == "d-uniform-k64-s0")
    assert shared.settings == ("supervised", "budget")


@pytest.mark.parametrize("protocol", ["cpu-quick", "gpu", "paper"])
def test_every_protocol_cell_is_a_valid_config(protocol, tmp_path):
    """A bad cell (say, a logged share without the similarity it counts by) must not wait hours to fail."""
    from scns.train.grid import cell_config
    from scns.train.validate import validate_config

    for cell in get_protocol(protocol):
        validate_config(cell_config(cell, tmp_path, {}), check_teacher=False)


def test_grid_rejects_an_invalid_cell_before_running_any(tmp_path):
    from scns.config import ConfigError

    cells = tiny_protocol()
    good = cells[0]
    bad = next(c for c in cells if c.method == "uniform")
    bad = replace(bad, overrides={**bad.overrides, "contrast.share_top_k": 3, "contrast.similarity": None})
    with pytest.raises(ConfigError, match=f"{bad.name}: contrast.share_top_k needs contrast.similarity"):
        run_grid([good, bad], tmp_path / "grid", log=lambda _: None)
    assert not (tmp_path / "grid" / "runs" / good.name).exists()


def test_protocols_are_well_formed():
    for name in ("cpu-quick", "gpu", "paper"):
        cells = get_protocol(name)
        names = {c.name for c in cells}
        assert len(names) == len(cells)
        assert all(c.depends_on in names for c in cells if c.depends_on)
    quick = get_protocol("cpu-quick")
    assert len([c for c in quick if "supervised" in c.settings]) == 7 * 3
    assert len([c for c in quick if "distill" in c.settings]) == 6 * 2
    assert {c.negatives for c in quick if "budget" in c.settings} == {256, 1024, 4096, 16384}
    # sample_topk's top_k counts neighbours; its logged class share counts the class-level top_k
    for cell in (c for c in quick if c.overrides.get("contrast.sampler") == "sample_topk"):
        assert cell.overrides["contrast.top_k"] == 1024
        assert cell.overrides["contrast.share_top_k"] == (3 if "supervised" in cell.settings else 10)
    precision = [c for c in quick if "bank_dtype" in c.settings]
    assert sorted((c.method, c.seed) for c in precision) == sorted(
        (m, s) for m in ("uniform", "uniform (bfloat16 bank)") for s in (0, 1, 2)
    )
    for cell in precision:  # same run as the float32 uniform cell of its seed but for the bank dtype
        twin = next(c for c in precision if c.seed == cell.seed and c is not cell)
        diff = set(cell.overrides.items()) ^ set(twin.overrides.items())
        assert {k for k, _ in diff} == {"contrast.bank_dtype"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_supervised_grid_resumes_its_unfinished_run_and_reports_paired_differences(tmp_path, monkeypatch):
    """The default run's end-to-end grid: four supervised cells (the slow test below adds the budget
    and distillation settings and the pilot's wording)."""
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path / "cache"))
    cells = [c for c in tiny_protocol() if "supervised" in c.settings]
    assert sorted(c.method for c in cells) == ["cross-entropy", "cross-entropy", "uniform", "uniform"]
    assert not run_grid(cells, tmp_path / "grid", log=lambda _: None)["failed"]
    (tmp_path / "grid" / "runs" / "d-uniform-k64-s1" / "summary.json").unlink()
    status = run_grid(cells, tmp_path / "grid", log=lambda _: None)
    assert status["finished"] == ["d-uniform-k64-s1"] and len(status["skipped"]) == 3

    records = collect([tmp_path / "grid"])
    text = build_report(records, tmp_path / "report", ["grid"]).read_text()
    assert "## supervised: digits:size=16, resnet8, 2 epochs" in text
    assert "| cross-entropy | 2 | 0,1 |" in text and "| uniform K=64 | 2 | 0,1 |" in text
    ce = sorted(r["final_top1"] for r in records if r["method"] == "cross-entropy")
    assert f"{sum(ce) / 2:.2f}" in text  # the mean of the two seeds' final top-1
    assert "diff vs uniform (95% CI, paired by seed)" in text and "Top-1 on the test split." in text
    assert (tmp_path / "report" / "supervised-digits-size-16-resnet8-2ep-curves.png").stat().st_size > 1000
    # every figure the report links is a file beside it (a dataset's options never reach a file name)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((tmp_path / "report" / link).is_file() for link in links), links


@pytest.mark.slow  # 9 cells, three settings (the default run has the supervised grid above)
def test_grid_skips_finished_resumes_unfinished_and_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path / "cache"))
    cells = tiny_protocol()
    status = run_grid(cells, tmp_path / "grid", log=lambda _: None)
    assert not status["failed"], status["failed"]
    assert len(status["finished"]) == len(cells)
    results = json.loads((tmp_path / "grid" / RESULTS_NAME).read_text())
    assert {r["name"] for r in results} == {c.name for c in cells}

    # a finished grid does nothing; an unfinished run (summary and last epoch gone, as after a kill) resumes
    victim = tmp_path / "grid" / "runs" / "d-uniform-k64-s1"
    (victim / "summary.json").unlink()
    status = run_grid(cells, tmp_path / "grid", log=lambda _: None)
    assert status["finished"] == ["d-uniform-k64-s1"] and len(status["skipped"]) == len(cells) - 1

    records = collect([tmp_path / "grid"])
    assert len(records) == len(cells)
    report = build_report(records, tmp_path / "report", ["grid"])
    text = report.read_text()
    assert (
        "## supervised: digits, resnet8, 2 epochs" in text and "## budget: digits, resnet8, 2 epochs" in text
    )
    assert "| cross-entropy | 2 | 0,1 |" in text and "| uniform K=32 | 2 | 0,1 |" in text
    assert f"(devices: cpu; CPU kernels: {torch.backends.cpu.get_cpu_capability()})" in text
    assert "diff vs uniform (95% CI, paired by seed)" in text and "diff vs kd" in text
    # hardness is read from the first and the last epoch's log of each run
    uniform = [r for r in records if r["name"] == "d-uniform-k64-s0"][0]
    epochs = [
        json.loads(line)
        for line in (tmp_path / "grid" / "runs" / "d-uniform-k64-s0" / "metrics.jsonl").open()
    ]
    assert (
        uniform["neg_sim_first"] == epochs[0]["train_neg_sim"]
        and uniform["neg_sim"] == epochs[-1]["train_neg_sim"]
    )
    assert uniform["neg_sim_curve"] == [e["train_neg_sim"] for e in epochs]
    both = [r for r in records if r["name"].startswith("d-uniform-k64-s")]
    first = sum(r["neg_sim_first"] for r in both) / 2
    last = sum(r["neg_sim"] for r in both) / 2
    assert f"| {first:.3f} -> {last:.3f} |" in text
    for png in (
        "supervised-digits-resnet8-2ep-curves.png",
        "supervised-digits-resnet8-2ep-hardness.png",
        "supervised-digits-resnet8-2ep-hardness-curves.png",
        "budget-digits-resnet8-2ep-budget.png",
        "distill-digits-resnet8-2ep-curves.png",
    ):
        assert (tmp_path / "report" / png).stat().st_size > 1000
    assert "Top-1 on the test split." in text and "Top-1 on the validation split" not in text

    # a pilot (validation split) gets the same negatives' plots as the settings it is made of, and
    # says which split its top-1 was measured on
    pilot = [
        {**r, "settings": ["pilot"], "eval_split": "val"} for r in records if r["objective"] == "distill"
    ]
    text = build_report(pilot, tmp_path / "pilot-report", ["grid"]).read_text()
    assert "## pilot: digits, resnet8, 2 epochs" in text
    assert "Top-1 on the validation split held out of the training data." in text
    assert (tmp_path / "pilot-report" / "pilot-digits-resnet8-2ep-hardness-curves.png").stat().st_size > 1000


def test_with_seeds_reruns_each_run_family_per_seed_and_keeps_teachers():
    from scns.train.protocols import with_seeds

    cells = tiny_protocol()
    reseeded = with_seeds(cells, [3, 5])
    teachers = [c for c in reseeded if "teacher" in c.settings]
    assert teachers == [c for c in cells if "teacher" in c.settings]
    runs = [c for c in reseeded if "teacher" not in c.settings]
    families = {c.name.rsplit("-s", 1)[0] for c in cells if "teacher" not in c.settings}
    assert sorted(c.name for c in runs) == sorted(f"{f}-s{s}" for f in families for s in (3, 5))
    for cell in runs:
        assert cell.overrides["train.seed"] == cell.seed and cell.name.endswith(f"-s{cell.seed}")
        original = next(c for c in cells if c.name.rsplit("-s", 1)[0] == cell.name.rsplit("-s", 1)[0])
        assert {k: v for k, v in cell.overrides.items() if k != "train.seed"} == {
            k: v for k, v in original.overrides.items() if k != "train.seed"
        }
        assert cell.settings == original.settings and cell.depends_on == original.depends_on
    with pytest.raises(ValueError, match="distinct"):
        with_seeds(cells, [1, 1])


def test_results_json_keeps_runs_of_other_invocations(tmp_path, monkeypatch):
    """A grid directory grown by several invocations (other --only or --seeds) lists all its runs."""
    from scns.train.protocols import with_seeds

    cells = [c for c in tiny_protocol() if c.name == "d-cross-entropy-s0"]
    assert cells
    run_grid(cells, tmp_path / "grid", log=lambda _: None)
    run_grid(with_seeds(cells, [1]), tmp_path / "grid", log=lambda _: None)
    results = json.loads((tmp_path / "grid" / RESULTS_NAME).read_text())
    assert sorted(r["name"] for r in results) == ["d-cross-entropy-s0", "d-cross-entropy-s1"]
    assert {r["seed"] for r in results} == {0, 1}


def test_report_plots_diagnostics_and_tabulates_the_superclass_split(tmp_path):
    from scns.report import plots
    from scns.report.markdown import superclass_table

    def record(method, seed, within, across, gap):
        return {
            "method": method,
            "seed": seed,
            "err_within_super": within,
            "err_across_super": across,
            "gap_curve": [gap, gap + 0.1],
            "dup_rate_curve": [0.0, 0.0],
            "topk_mass_curve": [None, None],  # not logged by these runs: no panel
        }

    runs = [
        record("uniform", 0, 10.0, 20.0, 0.1),
        record("uniform", 1, 12.0, 22.0, 0.2),
        record("scns", 0, 8.0, 21.0, 0.3),
    ]
    table = superclass_table(runs)
    assert "| uniform | 2 | 11.00 | 21.00 |" in table and "| scns | 1 | 8.00 | 21.00 |" in table
    assert superclass_table([{"method": "x", "err_within_super": None}]) is None
    path = plots.diagnostic_curves(runs, tmp_path / "d.png", "t")
    assert path is not None and path.stat().st_size > 0
    assert plots.diagnostic_curves([{"method": "x"}], tmp_path / "e.png", "t") is None


def test_grid_threads_sets_the_workers_torch_threads(tmp_path, monkeypatch):
    import torch

    import scns.train.grid as grid_module
    from scns.cli import main

    seen = []
    monkeypatch.setattr(
        grid_module,
        "run_grid",
        lambda *a, **k: (
            seen.append(torch.get_num_threads())
            or {"finished": [], "failed": {}, "skipped": [], "deferred": {}}
        ),
    )
    before = torch.get_num_threads()
    try:
        assert main(["grid", "cpu-quick", "--out", str(tmp_path), "--threads", str(before + 1)]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [before + 1]
    with pytest.raises(SystemExit, match="--threads must be >= 1"):
        main(["grid", "cpu-quick", "--out", str(tmp_path), "--threads", "0"])
