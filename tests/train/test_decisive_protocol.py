"""The decisive experiment's protocol: the pilot never reads the test split, every cell is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from scns.train import protocols
from scns.train.grid import cell_config
from scns.train.protocols import (
    CLASS_LEVEL_CANDIDATES,
    DECISIVE_MAIN_SEEDS,
    PAPER_LITE_ARMS,
    PILOT_ARMS,
    PILOT_REGIME_ARMS,
    decisive,
    decisive_main,
    decisive_main_arms,
    paper_lite,
)
from scns.train.validate import validate_config


def test_teacher_and_pilot_hold_out_the_same_images_and_evaluate_on_them() -> None:
    """Every cell trains on the same 45,000 images; the teacher and the pilot score on the 5,000 held
    out, the main grid (listed once the pilot has chosen) on the test split."""
    cells = decisive()
    teacher, students = cells[0], cells[1:]
    pilot = [c for c in students if c.name.startswith("pilot-")]
    main = [c for c in students if c.name.startswith("main-")]
    assert len(pilot) + len(main) == len(students)
    regime = [(a, seed) for a in PILOT_REGIME_ARMS for seed in (0, 1)]
    assert [(c.method, c.seed) for c in pilot] == regime + [
        (a, 0) for a in PILOT_ARMS if a not in PILOT_REGIME_ARMS
    ]
    for cell in cells:
        config = cell_config(cell, Path("/tmp/runs"), {"data.data_dir": "/data"})
        validate_config(config, check_teacher=False)
        scored_on = "test" if cell in main else "val"
        assert (config.data.val_size, config.data.val_seed, config.data.eval_split) == (5000, 0, scored_on)
    assert all(c.depends_on == teacher.name for c in students)


def test_paper_lite_runs_every_arm_for_three_seeds_on_the_full_data() -> None:
    cells = paper_lite()
    students = cells[1:]
    assert len(students) == 3 * (2 + len(PAPER_LITE_ARMS))  # the student alone and the class-level arm
    for cell in cells:
        config = cell_config(cell, Path("/tmp/runs"), {"data.data_dir": "/data"})
        validate_config(config, check_teacher=False)
        assert config.data.val_size == 0 and config.data.eval_split == "test"
        assert config.train.epochs == 240


@pytest.mark.parametrize("chosen", [None, *CLASS_LEVEL_CANDIDATES])
def test_paper_lite_checks_the_class_level_arm_the_pilot_chose(monkeypatch, chosen) -> None:
    monkeypatch.setattr(protocols, "DECISIVE_BEST_CLASS_ARM", chosen)
    class_arms = {c.method for c in paper_lite()} & set(CLASS_LEVEL_CANDIDATES)
    assert class_arms == {chosen or "crd+kd class_topk wordnet+glove"}


def test_main_grid_is_listed_only_once_the_pilot_has_chosen(monkeypatch) -> None:
    monkeypatch.setattr(protocols, "DECISIVE_BEST_CLASS_ARM", None)
    assert not [c for c in decisive() if c.name.startswith("main-")]
    monkeypatch.setattr(protocols, "DECISIVE_BEST_CLASS_ARM", CLASS_LEVEL_CANDIDATES[2])
    assert len([c for c in decisive() if c.name.startswith("main-")]) == 8 * len(DECISIVE_MAIN_SEEDS)


def test_workers_reach_the_deciding_cells_first(monkeypatch) -> None:
    """Cells run in list order: a grid stopped part-way has complete paired seeds of what decides."""
    monkeypatch.setattr(protocols, "DECISIVE_BEST_CLASS_ARM", CLASS_LEVEL_CANDIDATES[1])
    cells = decisive()[1:]
    kinds = ["main" if c.name.startswith("main-") else "pilot" for c in cells]
    deciding = {*PILOT_REGIME_ARMS, *CLASS_LEVEL_CANDIDATES}
    first_main, last_main = kinds.index("main"), len(kinds) - 1 - kinds[::-1].index("main")
    assert {c.method for c in cells[:first_main]} == deciding
    assert {c.method for c in cells[last_main + 1 :]} == set(PILOT_ARMS) - deciding
    main = cells[first_main : last_main + 1]
    assert all(kind == "main" for kind in kinds[first_main : last_main + 1])
    best = "best class-level: class_topk wordnet+glove beta1"
    # the primary comparison and the regime's KD, seed by seed; then the other SCNS arms; the student last
    assert [(c.method, c.seed) for c in main[:12]] == [
        (m, s) for s in DECISIVE_MAIN_SEEDS for m in ("kd", "crd+kd uniform", best)
    ]
    assert [c.seed for c in main[12:28]] == sorted(c.seed for c in main[12:28])
    assert {c.method for c in main[12:28]} == set(decisive_main_arms(CLASS_LEVEL_CANDIDATES[1])) - {
        "kd",
        "crd+kd uniform",
        best,
        "student",
    }
    assert [(c.method, c.seed) for c in main[28:]] == [("student", s) for s in DECISIVE_MAIN_SEEDS]


@pytest.mark.parametrize("best", CLASS_LEVEL_CANDIDATES)
def test_main_grid_is_paired_and_reads_the_test_split(best) -> None:
    teacher = decisive()[0]
    cells = decisive_main(teacher, best)
    by_method: dict[str, set[int]] = {}
    for cell in cells:
        by_method.setdefault(cell.method, set()).add(cell.seed)
        config = cell_config(cell, Path("/tmp/runs"), {"data.data_dir": "/data"})
        validate_config(config, check_teacher=False)
        # the same 45,000 training images as the teacher and the pilot; scored on the test split
        assert (config.data.val_size, config.data.val_seed, config.data.eval_split) == (5000, 0, "test")
        assert cell.depends_on == teacher.name and config.train.seed == cell.seed
    assert len(by_method) == 8 and all(seeds == set(DECISIVE_MAIN_SEEDS) for seeds in by_method.values())
    assert not set(DECISIVE_MAIN_SEEDS) & {0, 1}  # the pilot's seeds are not reused
    chosen = next(c for c in cells if c.method.startswith("best class-level"))
    assert {k: v for k, v in chosen.overrides.items() if k in PILOT_ARMS[best]} == PILOT_ARMS[best]
    k1024 = {c.method: c.overrides["contrast.negatives"] for c in cells if "k1024" in c.method}
    assert k1024 == {"crd+kd class_topk wordnet+glove k1024": 1024, "crd+kd uniform k1024": 1024}
    with pytest.raises(ValueError, match="not a class-level candidate"):
        decisive_main(teacher, "kd")


def _pilot_record(method: str, top1: float, step_s: float, seed: int = 0, name: str | None = None) -> dict:
    return {
        "name": name or f"pilot-{method}-s{seed}",
        "method": method,
        "seed": seed,
        "final_top1": top1,
        "step_time_s": step_s,
    }


def test_class_level_choice_applies_the_preregistered_rule() -> None:
    from scns.train.protocols import class_level_choice

    a, b, c = CLASS_LEVEL_CANDIDATES
    records = [_pilot_record(a, 60.0, 0.3), _pilot_record(b, 61.0, 0.3), _pilot_record(c, 60.5, 0.1)]
    assert class_level_choice(records) == b  # the highest validation top-1
    assert class_level_choice(records[:2]) is None  # a candidate has not finished
    tied = [_pilot_record(a, 61.0, 0.3), _pilot_record(b, 61.0, 0.2), _pilot_record(c, 60.0, 0.1)]
    assert class_level_choice(tied) == b  # a tie goes to the cheaper step
    # other seeds, other arms and the main grid's runs do not count
    others = [
        _pilot_record(c, 99.0, 0.1, seed=1),
        _pilot_record("crd+kd uniform", 99.0, 0.1),
        _pilot_record(c, 99.0, 0.1, seed=0, name="main-x-s0"),
    ]
    assert class_level_choice(records + others) == b


def test_the_committed_choice_follows_the_rule_on_the_committed_pilot() -> None:
    """DECISIVE_BEST_CLASS_ARM is set by hand after the pilot: it must be what the rule picks from the
    pilot's committed results (and stay unset while they are incomplete)."""
    import json

    from scns.train.protocols import DECISIVE_BEST_CLASS_ARM, class_level_choice

    results = Path(__file__).parents[2] / "benchmarks" / "results" / "decisive" / "results.json"
    if not results.exists():
        pytest.skip("no committed decisive results in this checkout")
    assert DECISIVE_BEST_CLASS_ARM == class_level_choice(json.loads(results.read_text()))


def test_shipped_settings_carry_the_decided_arm_s_contrast_options() -> None:
    """What ``distill_defaults.yaml`` ships for each possible answer of the rule: the arm's contrast
    options over the decisive student's, with no similarity where no sampler reads one."""
    from scns.train.protocols import best_class_label, shipped_settings

    best = best_class_label("crd+kd class_topk wordnet+glove")
    assert shipped_settings("crd+kd", best) == {
        "distill.method": "crd+kd",
        "contrast.sampler": "class_topk",
        "contrast.similarity": "wordnet+glove",
        "contrast.top_k": 10,
        "contrast.negatives": 16384,
    }
    assert shipped_settings("kd", "crd+kd uniform") == {
        "distill.method": "kd",
        "contrast.sampler": "uniform",
        "contrast.top_k": 10,
        "contrast.negatives": 16384,
    }
    assert shipped_settings("crd+kd", "crd+kd class_topk wordnet+glove k1024")["contrast.negatives"] == 1024
    sample = shipped_settings("crd+kd", "crd+kd sample_topk skip2%")
    assert "contrast.similarity" not in sample
    assert (sample["contrast.top_k"], sample["contrast.sampler_options.sample_topk.skip_nearest"]) == (
        4096,
        0.02,
    )
    with pytest.raises(ValueError, match="not an arm of the main grid"):
        shipped_settings("crd+kd", "crd+kd uniform k999")
    with pytest.raises(ValueError, match="names no class-level candidate"):
        shipped_settings("crd+kd", "best class-level: class_topk glove")
    # the class-level arm is read from its label, whichever candidate the pilot chose
    mixture = shipped_settings("kd", best_class_label("crd+kd mixture ramp teacher:confusion"))
    assert (mixture["contrast.sampler"], mixture["contrast.similarity"]) == ("mixture", "teacher:confusion")
    assert mixture["contrast.mixture_ramp"] == [2, 10] and mixture["distill.method"] == "kd"


#: What the distillation presets shipped before the decisive grid decided (kept until it does).
PRE_DECISION_DEFAULTS = {
    "distill.method": "crd",
    "contrast.sampler": "class_topk",
    "contrast.similarity": "wordnet",
    "contrast.top_k": 10,
    "contrast.negatives": 16384,
}


def test_the_shipped_defaults_are_the_rule_s_answer_on_the_committed_grid() -> None:
    """``presets/distill_defaults.yaml`` is set by hand from the decisive grid: once the committed
    results let the pre-registered rule decide, the file must hold its answer; until then, the
    earlier default."""
    import json

    import yaml

    from scns.config import PRESETS_DIR, flatten_sections
    from scns.report.decision import product_default
    from scns.train.protocols import shipped_settings

    shipped = flatten_sections(yaml.safe_load((PRESETS_DIR / "distill_defaults.yaml").read_text()))
    results = Path(__file__).parents[2] / "benchmarks" / "results" / "decisive" / "results.json"
    if not results.exists():
        pytest.skip("no committed decisive results in this checkout")
    main_runs = [r for r in json.loads(results.read_text()) if r["name"].startswith("main-")]
    decision = product_default(main_runs)
    if decision.complete:
        assert decision.method is not None and decision.negatives is not None
        assert shipped == shipped_settings(decision.method, decision.negatives), decision.reasons
    else:
        assert shipped == PRE_DECISION_DEFAULTS, decision.reasons
