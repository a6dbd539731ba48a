"""The training engine on the bundled digits data: run directory, resume equality, non-finite losses."""

from __future__ import annotations

import json

import pytest
import torch
from digits_runs import assert_same_state, digits_config

from scns.config import Config
from scns.objectives import SupervisedObjective
from scns.provenance import code_provenance
from scns.rundir import RunDir
from scns.train import checkpoint as ckpt
from scns.train.engine import MACHINE_METRICS, NonFiniteLossError, Trainer


def tiny_config(**overrides) -> Config:
    """Three deterministic one-cycle epochs of four steps, evaluated in batches of 200, seed 3."""
    return digits_config(
        **{
            "data.eval_batch_size": 200,
            "optim.schedule": "onecycle",
            "optim.lr": 0.05,
            "train.epochs": 3,
            "train.max_steps_per_epoch": 4,
            "train.deterministic": True,
            "train.seed": 3,
            **overrides,
        }
    )


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def strip_time(records):
    return [{k: v for k, v in r.items() if k not in MACHINE_METRICS} for r in records]


def test_run_directory_holds_config_metrics_checkpoints_summary(tmp_path):
    run_dir = tmp_path / "run"
    summary = Trainer.create(tiny_config(), run_dir).fit()
    assert Config.load(run_dir / "config.yaml") == tiny_config()
    records = read_metrics(run_dir)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    # train.eval_every=2 (DIGITS_TINY): evaluated after every second epoch and after the last
    assert [r["epoch"] for r in records if "test_top1" in r] == [1, 2]
    evaluated = [r for r in records if "test_top1" in r]
    assert all(0 <= r["test_top1"] <= r["test_top5"] <= 100 for r in evaluated)
    assert all(r["torch_threads"] == torch.get_num_threads() and r["load_avg_1m"] >= 0 for r in records)
    assert all(r["cpu_count"] >= 1 for r in records)
    # tests run torch on 1 thread (tests/conftest.py): a busy epoch's process runs most of its wall time
    assert all(0.0 < r["cpu_share"] <= 1.5 for r in records)
    assert {(r["cpu_capability"], r["device_type"]) for r in records} == {
        (torch.backends.cpu.get_cpu_capability(), "cpu")
    }
    assert summary["final_top1"] == records[-1]["test_top1"]
    assert summary["best_top1"] == max(r["test_top1"] for r in evaluated)
    state = ckpt.load_checkpoint(run_dir)
    assert state["epoch"] == 3 and state["global_step"] == 12
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["final_top1"] == summary["final_top1"]
    assert summary["code"] == code_provenance()
    # the layout module names exactly what the trainer wrote (and no temporary file is left behind)
    files = RunDir(run_dir)
    written = {path for path in run_dir.rglob("*") if path.is_file()}
    assert written == {
        files.config,
        files.metrics,
        files.summary,
        files.last_checkpoint,
        files.best_checkpoint,
    }


#: sample_topk from a prefilled bank, its kNN table rebuilt every epoch: the banks and the table are
#: part of what a resume must restore exactly (a SIGKILLed process: tests/train/test_kill_resume.py)
SAMPLE_TOPK = {
    "contrast.sampler": "sample_topk",
    "contrast.top_k": 16,
    "contrast.refresh_every": 1,
    "contrast.bank_prefill": True,
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "overrides",
    [pytest.param({}, marks=pytest.mark.slow), SAMPLE_TOPK],  # sample_topk: the same path and more state
    ids=["cross-entropy", "sample_topk"],
)
def test_resume_after_crash_mid_epoch_matches_uninterrupted_run(tmp_path, monkeypatch, overrides):
    config = tiny_config(**{"train.epochs": 2, **overrides})  # the crash is in the last epoch
    reference = Trainer.create(config, tmp_path / "ref")
    reference.fit()

    crashed = Trainer.create(config, tmp_path / "crash")
    calls = {"n": 0}
    original = SupervisedObjective.after_step

    def crash_in_second_epoch(self):
        calls["n"] += 1
        if calls["n"] == 6:  # epoch 1, step 2
            raise RuntimeError("simulated kill")
        original(self)

    monkeypatch.setattr(SupervisedObjective, "after_step", crash_in_second_epoch)
    with pytest.raises(RuntimeError, match="simulated kill"):
        crashed.fit()
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path / "crash")["epoch"] == 1

    resumed = Trainer.resume(tmp_path / "crash")
    resumed.fit()
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert_same_state(reference.objective.state_dict(), resumed.objective.state_dict())
    if overrides:  # the bank and the kNN table were compared
        state = reference.objective.state_dict()
        assert any("bank" in k for k in state)
        assert state["negatives._extra_state"]["sampler"]["table"].shape[1] == 16
    assert strip_time(read_metrics(tmp_path / "ref")) == strip_time(read_metrics(tmp_path / "crash"))


def test_existing_run_is_not_overwritten(tmp_path):
    Trainer.create(tiny_config(**{"train.epochs": 1}), tmp_path / "run").fit()
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer.create(tiny_config(), tmp_path / "run")


class NaNAtStep(SupervisedObjective):
    """Cross-entropy that turns NaN on one chosen step."""

    def __init__(self, model, bad_step: int) -> None:
        super().__init__(model)
        self.bad_step = bad_step
        self.calls = 0

    def forward(self, batch):
        out = super().forward(batch)
        self.calls += 1
        if self.calls == self.bad_step:
            out.loss = out.loss * float("nan")
            out.parts["ce"] = out.loss
        return out


def test_nonfinite_loss_stops_with_diagnostic_checkpoint(tmp_path):
    trainer = Trainer.create(
        tiny_config(), tmp_path / "run", objective_factory=lambda c, m, d, dev: NaNAtStep(m, 6)
    )
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1"):
        trainer.fit()
    diagnostic = tmp_path / "run" / "checkpoints" / "nonfinite-epoch1-step1.pt"
    state = ckpt.load_checkpoint(diagnostic)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_skip_nonfinite_tolerates_budgeted_steps(tmp_path):
    config = tiny_config(**{"train.skip_nonfinite": 1})
    trainer = Trainer.create(config, tmp_path / "run", objective_factory=lambda c, m, d, dev: NaNAtStep(m, 2))
    summary = trainer.fit()
    assert summary["nonfinite_skipped"] == 1
    assert trainer.global_step == 11  # 12 steps, one skipped


def test_restart_without_checkpoint_does_not_keep_stale_metrics(tmp_path):
    run_dir = tmp_path / "run"
    Trainer.create(tiny_config(**{"train.epochs": 1}), run_dir).fit()
    (run_dir / "checkpoints" / "last.pt").unlink()  # e.g. results kept, checkpoints not
    Trainer.create(tiny_config(**{"train.epochs": 1}), run_dir).fit()
    assert [r["epoch"] for r in read_metrics(run_dir)] == [0]


def test_evaluate_command_reproduces_the_final_accuracy(tmp_path, capsys):
    from scns.cli import main

    summary = Trainer.create(tiny_config(**{"train.epochs": 1}), tmp_path / "run").fit()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["top1"] == pytest.approx(summary["final_top1"], abs=1e-3)
    assert report["n"] == 360 and report["model"] == "resnet8"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
