"""The decisive experiment's figures that README quotes are those the committed results give, so the
front page cannot drift from the data (re-derived here with the report's own statistics)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scns.report.decision import top1_by_method
from scns.report.stats import paired_difference
from scns.train.protocols import DECISIVE_BEST_CLASS_ARM

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decisive" / "results.json"


def _readme() -> str:
    return " ".join((ROOT / "README.md").read_text().split())  # line breaks read as spaces


@pytest.fixture
def pilot() -> dict[str, dict[int, float]]:
    if not RESULTS.exists():
        pytest.skip("no committed decisive results in this checkout")
    runs = [r for r in json.loads(RESULTS.read_text()) if r["name"].startswith("pilot-")]
    return top1_by_method(runs)


def test_readme_quotes_the_pilot_regime_comparison_as_measured(pilot: dict[str, dict[int, float]]) -> None:
    crd_kd, kd = pilot["crd+kd uniform"], pilot["kd"]
    per_seed = [crd_kd[s] - kd[s] for s in (0, 1)]
    d = paired_difference(crd_kd, kd)
    assert d is not None and d.n == 2
    quoted = (
        f"by {per_seed[0]:+.2f} and {per_seed[1]:+.2f} points (seeds 0 and 1, resnet32 -> resnet8, 20 epochs), "
        f"mean {d.mean:+.2f}, 95 % interval [{d.low:+.2f}, {d.high:+.2f}] with two seeds"
    )
    assert quoted in _readme()


def test_readme_quotes_the_chosen_class_level_arm_as_measured(pilot: dict[str, dict[int, float]]) -> None:
    assert DECISIVE_BEST_CLASS_ARM is not None
    chosen, uniform = pilot[DECISIVE_BEST_CLASS_ARM][0], pilot["crd+kd uniform"][0]
    text = _readme()
    assert re.search(
        rf"{chosen:.2f} % on the validation split at seed 0, against {uniform:.2f} % for uniform", text
    )
