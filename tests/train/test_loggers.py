"""``--log tensorboard``: the epoch line's scalars and hardness histograms as TensorBoard events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scns.config import ConfigError
from scns.train.loggers import (
    TensorBoardLogger,
    histogram_summary,
    open_loggers,
    parse_sinks,
    scalar_tag,
)


def test_histogram_summary_closed_form() -> None:
    # 4 bins over [-1, 1]: centres -0.75, -0.25, 0.25, 0.75
    out = histogram_summary([0, 2, 0, 1])
    assert out is not None
    assert (out["min"], out["max"], out["num"]) == (-0.5, 1.0, 3.0)
    assert out["sum"] == pytest.approx(2 * -0.25 + 0.75)
    assert out["sum_squares"] == pytest.approx(2 * 0.0625 + 0.5625)
    assert out["bucket_limits"] == [-0.5, 0.0, 0.5, 1.0] and out["bucket_counts"] == [0.0, 2.0, 0.0, 1.0]
    assert histogram_summary([0, 0]) is None and histogram_summary([]) is None


def test_tags_and_sinks() -> None:
    assert scalar_tag("train_loss") == "train/loss" and scalar_tag("test_top1") == "test/top1"
    assert scalar_tag("val_top5") == "val/top5" and scalar_tag("lr") == "lr"
    assert parse_sinks("jsonl, tensorboard") == ["jsonl", "tensorboard"]
    with pytest.raises(ConfigError, match="train.log must name sinks from jsonl, tensorboard.*wandb"):
        parse_sinks("wandb")
    assert open_loggers("jsonl", "/nonexistent").loggers == []  # metrics.jsonl only: nothing opened


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'scns\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)


def _events(log_dir: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _record(epoch: int, loss: float) -> dict:
    return {
        "epoch": epoch,
        "lr": 0.1,
        "train_loss": loss,
        "train_neg_sim_se": float("nan"),  # not finite: skipped
        "test_top1": 50.0 + epoch,
        "neg_sim_hist": [0.0, 3.0, 1.0, 0.0],
        "deterministic": True,  # not a number
    }


def test_scalars_and_histograms_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    logger = TensorBoardLogger(tmp_path)
    for epoch in range(2):
        logger.log_epoch(_record(epoch, 2.0 - epoch))
    logger.close()
    acc = _events(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"lr", "train/loss", "test/top1"}
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 2.0), (2, 1.0)]
    assert [e.value for e in acc.Scalars("test/top1")] == [50.0, 51.0]
    (hist, _) = acc.Histograms("neg_sim_hist")
    assert hist.step == 1 and hist.histogram_value.num == 4.0
    assert list(hist.histogram_value.bucket) == [0.0, 3.0, 1.0, 0.0]
    assert hist.histogram_value.sum == pytest.approx(3 * -0.25 + 0.25)


def test_resume_drops_the_repeated_epochs(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    first = open_loggers("tensorboard", tmp_path)
    for epoch in range(3):
        first.log_epoch(_record(epoch, 10.0 + epoch))
    first.close()
    resumed = open_loggers("tensorboard", tmp_path, start_epoch=1)  # the checkpoint held 1 epoch
    for epoch in (1, 2):
        resumed.log_epoch(_record(epoch, 20.0 + epoch))
    resumed.close()
    acc = _events(tmp_path / "tensorboard")
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 10.0), (2, 21.0), (3, 22.0)]


@pytest.mark.slow
def test_training_run_writes_the_metrics_lines_to_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from scns.cli import main

    code = main(
        ["train", "--epochs", "2", "--model", "resnet8", "--device", "cpu", "--log", "tensorboard",
         "--sampler", "uniform", "--negatives", "32", "--out-dir", str(tmp_path), "--name", "r",
         "--no-progress", "--set", "train.max_steps_per_epoch=2", "--set", "data.eval_batch_size=360",
         "--set", "contrast.bank_prefill=false"]
    )  # fmt: skip
    assert code == 0
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    acc = _events(tmp_path / "r" / "tensorboard")
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([r["train_loss"] for r in lines])
    assert [e.value for e in acc.Scalars("test/top1")] == pytest.approx([r["test_top1"] for r in lines])
    counts = [list(h.histogram_value.bucket) for h in acc.Histograms("neg_sim_hist")]
    assert counts == [r["neg_sim_hist"] for r in lines]
