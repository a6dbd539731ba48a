"""A run with a validation split evaluates on held-out training images and never reads the test split."""

from __future__ import annotations


def test_a_run_evaluating_on_val_never_reads_the_test_split(tmp_path, monkeypatch) -> None:
    import json

    from digits_runs import digits_config

    from scns.train import engine
    from scns.train.engine import Trainer

    real_load = engine.load_dataset

    def train_only(name, root, split, download=False):
        assert split == "train", "the test split was read by a run that evaluates on val"
        return real_load(name, root, split, download)

    monkeypatch.setattr(engine, "load_dataset", train_only)
    config = digits_config(
        **{
            "data.val_size": 200,
            "data.eval_split": "val",
            "data.eval_batch_size": 200,
            "train.epochs": 1,
            "train.max_steps_per_epoch": 2,
        }
    )
    trainer = Trainer.create(config, tmp_path / "run")
    summary = trainer.fit()
    assert summary["eval_split"] == "val"
    full = real_load("digits", None, "train")
    assert len(trainer.eval_set) == 200 and len(trainer.train_set) == len(full) - 200
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "val_top1" in record and "test_top1" not in record
    assert summary["final_top1"] == record["val_top1"]
