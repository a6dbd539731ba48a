"""``scns demo``: its summary statistics and one short end-to-end run on the bundled digits."""

from __future__ import annotations

import json
import math

import pytest

from scns.cli import main
from scns.commands import demo
from scns.commands.demo import summarise
from scns.train.protocols import DEMO_ARMS


def test_summarise_gives_mean_sample_std_diagnostics_and_the_paired_difference_to_uniform() -> None:
    rows = summarise(
        {
            "cross-entropy": [
                {"seed": 0, "top1": 80.0, "gap": None, "topk_share": None, "dup_rate": None},
                {"seed": 1, "top1": 90.0, "gap": None, "topk_share": None, "dup_rate": None},
            ],
            "uniform": [
                {"seed": 0, "top1": 70.0, "gap": 0.5, "topk_share": None, "dup_rate": 0.0},
                {"seed": 1, "top1": 72.0, "gap": 0.7, "topk_share": None, "dup_rate": 0.1},
            ],
        }
    )
    ce, uniform = rows
    assert (ce["top1_mean"], ce["n"], ce["gap"]) == (85.0, 2, None)
    assert ce["top1_std"] == pytest.approx(math.sqrt(50.0))  # sample std of (80, 90)
    assert (uniform["top1_mean"], uniform["gap"], uniform["dup_rate"]) == (
        71.0,
        pytest.approx(0.6),
        pytest.approx(0.05),
    )
    assert uniform["vs_uniform"] is None
    # differences 10 and 18: mean 14, sd 5.657, t(0.975, 1) = 12.706 -> half width 50.82
    assert ce["vs_uniform"]["mean"] == pytest.approx(14.0)
    assert ce["vs_uniform"]["high"] - 14.0 == pytest.approx(12.7062 * 5.6569 / math.sqrt(2), rel=1e-3)


def run_demo(tmp_path, capsys) -> tuple[dict[str, dict], str]:
    """``scns demo`` for 3 epochs, one seed, K=64: its JSON rows by method and its printed output."""
    out = tmp_path / "demo.json"
    code = main(
        [
            "demo",
            "--epochs",
            "3",
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
    return {r["method"]: r for r in result["rows"]}, capsys.readouterr().out


def check_demo(rows: dict[str, dict], printed: str) -> None:
    assert list(rows) == list(DEMO_ARMS)
    assert all(r["n"] == 1 and 0.0 <= r["top1_mean"] <= 100.0 for r in rows.values())
    scns_arm = next(name for name in DEMO_ARMS if name.startswith("SCNS"))
    # epoch 3 of the ramp [1, 3]: half of the semantic half comes from each anchor's 3 nearest classes by
    # the bank (share 1), the rest uniform over 9 classes (share 3/9): 0.25 + 0.75 / 3 = 0.5 expected
    assert rows[scns_arm]["topk_share"] > 0.4
    assert rows[scns_arm]["dup_rate"] >= 0.0 and rows["uniform"]["gap"] is not None
    assert "scns demo: resnet8 on digits:size=16, 3 epochs" in printed


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_runs_every_arm_and_scns_draws_from_the_nearest_classes(tmp_path, capsys, monkeypatch) -> None:
    """The demo's own settings cut to 2 steps an epoch, evaluated after the last, banks not prefilled
    (the prefill is tested in tests/objectives/test_calibration.py; the share counts classes by the
    similarity the sampler drew by, whatever the bank holds). The share is read from the last epoch's
    diagnostic step: 64 anchors x 64 negatives, so 0.5 expected sits 20 standard errors above 0.4."""
    full = demo.demo_overrides
    cut = {"train.max_steps_per_epoch": 2, "train.eval_every": 3, "contrast.bank_prefill": False}
    monkeypatch.setattr(demo, "demo_overrides", lambda *args: {**full(*args), **cut})
    check_demo(*run_demo(tmp_path, capsys))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_full_epochs(tmp_path, capsys) -> None:
    """The same checks on the demo exactly as a user runs it (full epochs)."""
    check_demo(*run_demo(tmp_path, capsys))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_as_shipped_trains_every_arm_to_digits_accuracy(tmp_path, capsys) -> None:
    """``scns demo`` with its defaults (every arm, both seeds): each arm's mean test top-1 is at least
    97 %, where a resnet8 belongs on digits (360 test images: one error is 0.28 points)."""
    out = tmp_path / "demo.json"
    assert main(["demo", "--json", str(out), "--out-dir", str(tmp_path)]) == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == list(DEMO_ARMS)
    assert {name: r["n"] for name, r in rows.items()} == dict.fromkeys(DEMO_ARMS, 2)
    assert min(r["top1_mean"] for r in rows.values()) >= 97.0, rows
