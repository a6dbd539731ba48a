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
