"""The pre-registered rule that turns the decisive grid into the shipped default (scns.report.decision)."""

from __future__ import annotations

import pytest
from scipy import stats

from scns.report.decision import (
    FAMILY_LEVEL,
    FEWER_NEGATIVES_ARM,
    OTHER_SCNS_ARMS,
    product_default,
)
from scns.train.protocols import CLASS_LEVEL_CANDIDATES, decisive_main_arms

SEEDS = (2, 3, 4, 5)
CLASS_ARM = "best class-level: mixture ramp teacher:confusion"
SAMPLE, MIXUP = OTHER_SCNS_ARMS[0], OTHER_SCNS_ARMS[1]


def _runs(offsets: dict[str, tuple[float, ...]]) -> list[dict]:
    """Main-grid records: every arm's top-1 is a seed's base (which varies a lot across seeds, as
    paired designs expect) plus the arm's offset at that seed; arms not named sit at uniform's."""
    base = {2: 55.0, 3: 57.5, 4: 54.0, 5: 56.2}
    arms = {
        "kd": (-3.0, -3.2, -2.9, -3.1),
        "crd+kd uniform": (0.0, 0.0, 0.0, 0.0),
        CLASS_ARM: (0.1, -0.2, 0.3, -0.1),
        SAMPLE: (-0.5, 0.2, -0.9, 0.1),
        MIXUP: (0.4, -0.6, 0.2, 0.0),
        FEWER_NEGATIVES_ARM: (-1.0, -0.2, -1.4, 0.3),
        "crd+kd uniform k1024": (-1.1, -0.9, -1.0, -1.2),
        "student": (-6.0, -6.0, -6.0, -6.0),
        **offsets,
    }
    return [
        {"method": arm, "seed": seed, "final_top1": base[seed] + delta}
        for arm, deltas in arms.items()
        for seed, delta in zip(SEEDS, deltas)
    ]


def test_the_rule_names_every_main_grid_arm_it_reads():
    from scns.report.decision import BEST_CLASS_LEVEL
    from scns.train.protocols import BEST_CLASS_PREFIX

    assert BEST_CLASS_LEVEL == BEST_CLASS_PREFIX  # the report's copy of the grid's label
    labels = set(decisive_main_arms(CLASS_LEVEL_CANDIDATES[0]))
    assert {"kd", "crd+kd uniform", "crd+kd uniform k1024", *OTHER_SCNS_ARMS} <= labels
    assert any(label.startswith("best class-level") for label in labels)


def test_a_class_level_arm_above_uniform_is_shipped_inside_crd_kd():
    decision = product_default(_runs({CLASS_ARM: (0.8, 1.1, 0.9, 1.3)}))
    assert decision.method == "crd+kd" and decision.negatives == CLASS_ARM
    assert "rule 2a" in decision.reasons[-1]


def test_without_a_paying_contrastive_term_the_method_is_kd():
    decision = product_default(_runs({"kd": (0.5, -0.4, 0.2, -0.6)}))
    assert decision.method == "kd"


def test_another_arm_must_clear_the_bonferroni_widened_interval():
    # diffs 1.0, 1.5, 0.5, 1.2: above 0 at 95 % but not at 98.75 %
    diffs = (1.0, 1.5, 0.5, 1.2)
    mean, se = sum(diffs) / 4, stats.sem(diffs)
    assert mean - stats.t.ppf(0.975, 3) * se > 0 > mean - stats.t.ppf(0.5 + FAMILY_LEVEL / 2, 3) * se
    assert product_default(_runs({SAMPLE: diffs})).negatives != SAMPLE
    # tighter: clears the widened interval too, and the better of two such arms wins
    decision = product_default(_runs({SAMPLE: (1.0, 1.1, 0.9, 1.05), MIXUP: (2.0, 2.1, 1.9, 2.0)}))
    assert decision.negatives == MIXUP and "rule 2b" in decision.reasons[-1]


def test_fewer_negatives_ship_when_equivalent_within_the_margin():
    decision = product_default(_runs({FEWER_NEGATIVES_ARM: (0.05, -0.1, 0.0, 0.08)}))
    assert decision.negatives == FEWER_NEGATIVES_ARM and "rule 2c" in decision.reasons[-1]


def test_otherwise_uniform_and_every_comparison_is_stated():
    decision = product_default(_runs({}))
    assert decision.method == "crd+kd" and decision.negatives == "crd+kd uniform"
    assert "rule 2d" in decision.reasons[-1]
    # the method's comparison, with the interval scipy gives for the same differences
    diffs = [3.0, 3.2, 2.9, 3.1]
    half = stats.t.ppf(0.975, 3) * stats.sem(diffs)
    mean = sum(diffs) / 4
    assert f"+{mean:.2f} [+{mean - half:.2f}, +{mean + half:.2f}]" in decision.reasons[0]


@pytest.mark.parametrize("arm", [CLASS_ARM, SAMPLE])
def test_one_seed_short_of_a_pair_decides_nothing(arm):
    runs = [r for r in _runs({}) if not (r["method"] == arm and r["seed"] == 2)]
    decision = product_default(runs)
    assert decision.method is None and not decision.complete
    assert arm.split(":")[0] in decision.reasons[0]


def test_the_report_states_the_decision_and_its_comparisons():
    from scns.report.markdown import default_paragraph
    from scns.train.protocols import shipped_settings

    text = default_paragraph(_runs({CLASS_ARM: (0.8, 1.1, 0.9, 1.3)}), ship=shipped_settings)
    assert text.startswith(
        f"**Product default by the pre-registered rule: crd+kd, negatives of `{CLASS_ARM}`.**"
    )
    assert "- best class-level - crd+kd uniform: +1.02" in text
    # and the file that ships it, read back as the settings of the decided arm
    import yaml

    from scns.config import flatten_sections

    block = text.split("```yaml\n")[1].split("```")[0]
    assert flatten_sections(yaml.safe_load(block)) == shipped_settings("crd+kd", CLASS_ARM)
    assert "mixture_ramp: [2, 10]" in block
    pending = default_paragraph([r for r in _runs({}) if r["method"] != MIXUP])
    assert "not decided yet" in pending and MIXUP in pending
