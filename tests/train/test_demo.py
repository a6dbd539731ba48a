"""``scns demo``: its summary statistics and one short end-to-end run on the bundled digits."""

from __future__ import annotations

import json
import math

import pytest

from scns.cli import main
from scns.commands.demo import VARIANTS, summarise


def test_summarise_gives_mean_sample_std_and_no_cosine_for_cross_entropy() -> None:
    rows = summarise(
        {
            "cross-entropy": [
                {"top1": 80.0, "neg_sim": float("nan")},
                {"top1": 90.0, "neg_sim": float("nan")},
            ],
            "uniform": [{"top1": 70.0, "neg_sim": 0.5}, {"top1": 72.0, "neg_sim": 0.7}],
        }
    )
    ce, uniform = rows
    assert (ce["top1_mean"], ce["n"], ce["neg_sim_mean"]) == (85.0, 2, None)
    assert ce["top1_std"] == pytest.approx(math.sqrt(50.0))  # sample std of (80, 90)
    assert (uniform["top1_mean"], uniform["neg_sim_mean"]) == (71.0, pytest.approx(0.6))
    assert uniform["top1_std"] == pytest.approx(math.sqrt(2.0))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_runs_every_method_and_sample_topk_draws_harder_negatives(tmp_path, capsys) -> None:
    out = tmp_path / "demo.json"
    code = main(
        [
            "demo",
            "--epochs",
            "2",
            "--seeds",
            "0",
            "--negatives",
            "64",
            "--json",
            str(out),
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == [name for name, _ in VARIANTS]
    assert all(r["n"] == 1 and 0.0 <= r["top1_mean"] <= 100.0 for r in rows.values())
    # epoch 2 draws from the kNN table built from the bank after epoch 1: its negatives are the
    # anchors' nearest other-class samples, so they score higher against the anchors than uniform ones
    assert rows["sample_topk"]["neg_sim_mean"] > rows["uniform"]["neg_sim_mean"]
    assert "scns demo: resnet8 on digits, 2 epochs" in capsys.readouterr().out
