"""Report statistics against closed forms."""

from __future__ import annotations

import math

import pytest

from scns.report.stats import paired_difference, summarize, t_quantile


def test_summarize_closed_form():
    s = summarize([1.0, 2.0, 4.0])
    assert s.mean == pytest.approx(7 / 3) and s.n == 3
    assert s.std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert summarize([5.0]).std == 0.0


def test_t_quantiles_match_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)


def test_paired_difference_pairs_by_seed():
    method = {0: 71.0, 1: 72.0, 2: 73.5, 7: 99.0}
    base = {0: 70.0, 1: 70.5, 2: 72.0}
    d = paired_difference(method, base)
    diffs = [1.0, 1.5, 1.5]
    half = 4.302652729911275 * summarize(diffs).std / math.sqrt(3)
    assert d.n == 3 and d.mean == pytest.approx(4 / 3)
    assert (d.low, d.high) == (pytest.approx(4 / 3 - half), pytest.approx(4 / 3 + half))
    assert not d.within_noise


def test_within_noise_when_interval_covers_zero_or_single_pair():
    assert paired_difference({0: 1.0, 1: -1.0}, {0: 0.0, 1: 0.0}).within_noise
    single = paired_difference({0: 2.0}, {0: 1.0})
    assert single.n == 1 and single.within_noise and math.isinf(single.high)
    assert paired_difference({0: 1.0}, {1: 1.0}) is None


def test_noise_statement_makes_no_claim_from_one_seed():
    from scns.report.markdown import _noise_statement

    def run(method, seed, acc):
        return {"method": method, "seed": seed, "final_top1": acc, "negatives": 64}

    one = _noise_statement("supervised", [run("uniform", 0, 50.0), run("class_topk", 0, 55.0)])
    assert "no claim" in one and "within noise" not in one.lower() and "beyond noise" not in one
    three = [run("uniform", s, 50.0 + s) for s in range(3)] + [
        run("class_topk", s, 55.0 + s + 0.1 * s) for s in range(3)
    ]
    assert "beyond noise: class_topk (+5.10)" in _noise_statement("supervised", three)


def test_paired_p_value_matches_scipy_and_closed_form():
    from scipy.stats import ttest_rel

    method = {0: 71.0, 1: 72.4, 2: 73.5, 3: 70.2}
    base = {0: 70.0, 1: 71.5, 2: 73.9, 3: 69.0}
    d = paired_difference(method, base)
    ref = ttest_rel([method[s] for s in range(4)], [base[s] for s in range(4)])
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    # closed form for 2 pairs (1 dof): p = 1 - 2 atan(|t|) / pi
    two = paired_difference({0: 2.0, 1: 3.0}, {0: 0.0, 1: 0.0})
    t = 2.5 / (math.sqrt(0.5) / math.sqrt(2))
    assert two.p_value == pytest.approx(1 - 2 * math.atan(t) / math.pi, rel=1e-9)


def test_equivalence_needs_the_whole_interval_inside_the_margin():
    from scns.report.stats import inside_margin

    tight = paired_difference({s: 80.0 + 0.01 * s for s in range(4)}, {s: 80.0 for s in range(4)})
    assert inside_margin(tight, 0.5)
    wide = paired_difference({0: 81.0, 1: 79.0, 2: 80.5, 3: 79.2}, {s: 80.0 for s in range(4)})
    assert wide.within_noise and not inside_margin(wide, 0.5)  # "no difference" is not "equivalent"
    assert not inside_margin(paired_difference({0: 80.0}, {0: 80.0}), 0.5)


def test_preregistered_table_reads_each_comparison_by_its_rule():
    from scns.report.markdown import preregistered_table

    def runs(method, values):
        return [{"method": method, "seed": s, "final_top1": v} for s, v in zip((2, 3, 4, 5), values)]

    records = (
        runs("crd+kd uniform", [60.0, 61.0, 60.5, 60.2])
        + runs("best class-level: class_topk wordnet+glove", [61.0, 62.1, 61.4, 61.3])  # +1.0 each, +-0.1
        + runs("kd", [60.1, 60.9, 60.6, 60.0])
        + runs("crd+kd class_topk wordnet+glove k1024", [60.05, 61.0, 60.45, 60.2])
    )
    table = preregistered_table(records)
    primary = next(line for line in table.splitlines() if line.startswith("| primary"))
    assert "best class-level: class_topk wordnet+glove - crd+kd uniform | 4 | +1.02" in primary
    assert primary.endswith("| better |")
    regime = next(line for line in table.splitlines() if "crd+kd uniform - kd" in line)
    assert "no difference detectable with 4 seeds" in regime
    equivalence = next(line for line in table.splitlines() if line.startswith("| equivalence"))
    assert "equivalent within +-0.5" in equivalence and "not shown" not in equivalence
    assert "| kd - student | 0 | - | - | - | not run yet |" in table


def test_the_report_statistics_load_without_the_plotting_stack(fresh_python) -> None:
    """``scns demo`` and the grid runner use them; matplotlib is for ``build_report`` alone."""
    code = (
        "import sys, scns.report.stats, scns.report; "
        "print('matplotlib' in sys.modules); "
        "from scns.report import build_report; print('matplotlib' in sys.modules, callable(build_report))"
    )
    assert fresh_python(code).split() == ["False", "True", "True"]
