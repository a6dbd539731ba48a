"""Every method runs end to end for two epochs on the bundled digits data, and bad teachers are refused."""

from __future__ import annotations

import json

import pytest
import torch
from digits_runs import digits_config

from scns.cli import main
from scns.config import Config
from scns.train import checkpoint as ckpt
from scns.train.engine import Trainer
from scns.train.validate import validate_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("teacher") / "run"
    Trainer.create(digits_config(**{"train.epochs": 1}), run_dir).fit()
    return run_dir


def last_record(run_dir):
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.parametrize(
    "overrides",
    [
        {"contrast.sampler": "uniform"},
        {"contrast.sampler": "sample_topk", "contrast.top_k": 32, "contrast.refresh_every": 1},
        {"contrast.sampler": "uniform", "contrast.latent_mixup": 8, "contrast.loss": "infonce"},
    ],
    ids=["uniform", "sample_topk", "mixup-infonce"],
)
def test_supervised_methods_two_epochs(tmp_path, overrides):
    config = digits_config(**overrides)
    validate_config(config)
    summary = Trainer.create(config, tmp_path / "run").fit()
    record = last_record(tmp_path / "run")
    assert summary["final_top1"] is not None
    for key in ("train_ce", "train_contrast", "train_neg_sim", "train_pos_sim"):
        assert key in record and record[key] == record[key]  # present and not NaN
    assert -1.0 <= record["train_neg_sim"] <= 1.0
    # diagnostics are sampled on every log_every-th step: here step 0 of the 2, so the hardness
    # histogram holds that step's 32 x 64 negatives (K=64 < log_negatives) and one step is averaged
    assert sum(record["neg_sim_hist"]) == 32 * 64 and len(record["neg_sim_hist"]) == 40
    assert record["train_diag_steps"] == 1 and record["train_gap"] == record["train_gap"]
    assert (
        record["train_dup_rate"] >= 0 and record["train_neg_sim_se"] != record["train_neg_sim_se"]
    )  # NaN: n=1
    assert 0 < record["sampling_time_s"] < record["epoch_time_s"]
    # the second epoch of sample_topk (refresh_every 1) starts with a kNN build inside its epoch time
    built = overrides["contrast.sampler"] == "sample_topk"
    assert (record["refresh_time_s"] > 0) == built and record["refresh_time_s"] < record["epoch_time_s"]


def test_class_topk_from_teacher_prototypes(tmp_path, teacher_run):
    config = digits_config(
        **{
            "contrast.sampler": "class_topk",
            "contrast.similarity": f"prototypes:{teacher_run}",
            "contrast.top_k": 2,
        }
    )
    validate_config(config)
    Trainer.create(config, tmp_path / "run").fit()
    assert last_record(tmp_path / "run")["train_topk_share"] == pytest.approx(1.0)


@pytest.mark.parametrize(("cap", "per_epoch"), [(None, None), (3, 3)])
def test_teacher_mode_decision_counts_the_steps_the_run_takes(
    tmp_path, teacher_run, monkeypatch, cap, per_epoch
):
    """``auto`` compiles the teacher only for runs long enough to repay it: the count it is given is
    epochs x steps per epoch, capped by train.max_steps_per_epoch like the training loop."""
    import scns.train.setup as setup

    seen = []
    real = setup.freeze_for_inference
    monkeypatch.setattr(
        setup,
        "freeze_for_inference",
        lambda net, device, mode, expected_calls: seen.append(expected_calls) or real(net, device, mode),
    )
    config = digits_config(
        **{
            "train.objective": "distill",
            "distill.teacher": str(teacher_run),
            "distill.method": "kd",
            "train.epochs": 5,
            "train.max_steps_per_epoch": cap,
        }
    )
    trainer = Trainer.create(config, tmp_path / "run")
    trainer.build()
    assert seen == [5 * (per_epoch or trainer.steps_per_epoch)]
    assert trainer.steps_per_epoch == (per_epoch or len(trainer.loader))


@pytest.mark.parametrize("method", ["student", "kd", "crd", "crd+kd"])
def test_distill_methods_two_epochs(tmp_path, teacher_run, method):
    config = digits_config(
        **{"train.objective": "distill", "distill.teacher": str(teacher_run), "distill.method": method}
    )
    validate_config(config)
    trainer = Trainer.create(config, tmp_path / "run")
    trainer.build()
    # the teacher as built (its frozen mode may fold conv+BN) never changes during training
    teacher_state = {k: v.clone() for k, v in trainer.objective.teacher.state_dict().items()}
    summary = trainer.fit()
    assert summary["final_top1"] is not None
    record = last_record(tmp_path / "run")
    expected = {"student": {"ce"}, "kd": {"ce", "kd"}, "crd": {"ce", "crd"}, "crd+kd": {"ce", "kd", "crd"}}[
        method
    ]
    assert {k[len("train_") :] for k in record if k in {"train_ce", "train_kd", "train_crd"}} == expected
    for name, tensor in trainer.objective.teacher.state_dict().items():
        assert torch.equal(tensor, teacher_state[name]), name
    assert not trainer.objective.teacher.training


def test_distill_resume_keeps_banks(tmp_path, teacher_run):
    config = digits_config(
        **{
            "train.objective": "distill",
            "distill.teacher": str(teacher_run),
            "distill.method": "crd",
            "train.epochs": 1,
        }
    )
    trainer = Trainer.create(config, tmp_path / "run")
    trainer.fit()
    resumed = Trainer.resume(tmp_path / "run", ["train.epochs=2"])
    resumed.build()
    for side in ("contrast_s", "contrast_t"):
        a = getattr(trainer.objective, side)
        b = getattr(resumed.objective, side)
        assert torch.equal(a.bank.table, b.bank.table)
        assert torch.equal(a.criterion.log_z, b.criterion.log_z)


def test_mismatched_teacher_is_rejected_before_training(tmp_path, teacher_run):
    state = ckpt.load_checkpoint(teacher_run)
    state["num_classes"] = 7
    state.pop("path")
    ckpt.save_checkpoint(tmp_path / "seven.pt", state)
    config = digits_config(**{"train.objective": "distill", "distill.teacher": str(tmp_path / "seven.pt")})
    with pytest.raises(ckpt.CheckpointError, match="trained for 7 classes"):
        validate_config(config)
    config = digits_config(
        **{
            "train.objective": "distill",
            "distill.teacher": str(teacher_run),
            "distill.teacher_model": "resnet32x4",
        }
    )
    with pytest.raises(ckpt.CheckpointError, match="holds a 'resnet8'"):
        validate_config(config)


def test_cli_distill_and_errors(tmp_path, teacher_run, capsys):
    code = main(
        [
            "distill",
            "--dataset",
            "digits",
            "--teacher",
            str(teacher_run),
            "--student",
            "resnet8",
            "--method",
            "crd",
            "--sampler",
            "class_topk",
            "--similarity",
            f"prototypes:{teacher_run}",
            "--top-k",
            "3",
            "--negatives",
            "32",
            "--epochs",
            "1",
            "--set",
            "train.max_steps_per_epoch=1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "d",
            "--no-progress",
        ]
    )
    assert code == 0
    saved = Config.load(tmp_path / "d" / "config.yaml")
    assert (
        saved.train.objective == "distill"
        and saved.contrast.sampler == "class_topk"
        and saved.contrast.top_k == 3
    )
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--sampler",
                "class_topk",
                "--similarity",
                "glove",
                "--top-k",
                "12",
            ]
        )
        == 2
    )
    assert "top_k must be in [1, 9]" in capsys.readouterr().err
    assert main(["train", "--model", "resnet9"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet9'" in err and "resnet8" in err
