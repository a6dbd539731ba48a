"""The distillation teacher runs only when a term reads it, through its frozen path, recorded in summary.json."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from scns.config import Config, ConfigError
from scns.data.batch import Batch
from scns.models import create_model
from scns.models.frozen import freeze_for_inference
from scns.objectives import build_objective
from scns.train.engine import Trainer
from scns.train.validate import validate_config

N, C = 96, 5

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def labels() -> torch.Tensor:
    return torch.arange(N) % C


def batch(b: int = 16, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(N, generator=g)[:b]
    return Batch(torch.randn(b, 3, 16, 16, generator=g), labels()[index], index)


def trained_like(name: str) -> nn.Module:
    """A zoo model whose BatchNorms hold non-trivial running statistics (a few train-mode passes)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=C)
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(batch(32, seed).x * (1 + seed))
    return model.eval()


def distill_objective(method: str, teacher: nn.Module, **overrides):
    config = Config().with_overrides(
        {
            "train.objective": "distill",
            "distill.method": method,
            "contrast.negatives": 16,
            "contrast.embed_dim": 8,
            **overrides,
        }
    )
    torch.manual_seed(1)
    return build_objective(config, create_model("resnet8", num_classes=C), labels(), teacher=teacher)


def count_calls(module: nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def step(objective, b: Batch):
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    out = objective(b)
    out.loss.backward()
    objective.after_step()
    return out


@pytest.mark.parametrize(("method", "expected_calls"), [("student", 0), ("kd", 2), ("crd", 2), ("crd+kd", 2)])
def test_teacher_forward_runs_only_when_a_term_reads_it(method, expected_calls):
    teacher = trained_like("resnet8")
    calls = count_calls(teacher)
    objective = distill_objective(method, teacher)
    step(objective, batch(seed=0))
    step(objective, batch(seed=1))
    assert calls[0] == expected_calls
    assert objective.summary_info() == {"teacher_mode": "unused" if method == "student" else "eager"}


def test_student_with_a_kd_weight_still_runs_the_teacher():
    teacher = trained_like("resnet8")
    calls = count_calls(teacher)
    objective = distill_objective("student", teacher, **{"distill.kd_weight": 0.5})
    out = step(objective, batch())
    assert calls[0] == 1 and set(out.parts) == {"ce", "kd"}


@pytest.mark.parametrize("method", ["kd", "crd+kd"])
def test_frozen_teacher_gives_the_plain_teachers_loss_and_gradients(method):
    # fp32 fold: loss parts within 1e-4 of the plain (eager) teacher's, gradients within 1e-3 relative
    plain = trained_like("resnet8x4")
    frozen = freeze_for_inference(plain, "cpu", "fused-cl")
    outs, grads = [], []
    for teacher in (plain, frozen):
        objective = distill_objective(method, teacher)
        outs.append(step(objective, batch()))
        grads.append({n: p.grad.clone() for n, p in objective.named_parameters() if p.grad is not None})
    assert set(outs[0].parts) == set(outs[1].parts)
    for name in outs[0].parts:
        assert abs(outs[0].parts[name].item() - outs[1].parts[name].item()) < 1e-4, name
    assert grads[0].keys() == grads[1].keys()
    if method == "crd+kd":
        assert "embed_t.linear.weight" in grads[1]  # the teacher's embed head trains on frozen features
    for name, g in grads[0].items():
        scale = g.abs().max().item() + 1e-12
        assert (g - grads[1][name]).abs().max().item() < 1e-3 * scale + 1e-6, name
    assert not any(k.startswith("teacher.") for k in objective.state_dict())


TINY = {
    "data.dataset": "digits:size=16",
    "data.batch_size": 32,
    "model.name": "resnet8",
    "optim.schedule": "constant",
    "train.epochs": 1,
    "train.max_steps_per_epoch": 1,
    "train.device": "cpu",
    "train.progress": False,
    "contrast.negatives": 16,
}


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("teacher") / "run"
    Trainer.create(Config().with_overrides(TINY), run_dir).fit()
    return run_dir


@pytest.mark.parametrize(
    ("method", "mode", "recorded"),
    [("kd", "auto", "fused-cl"), ("student", "auto", "unused")],
)
def test_summary_records_the_teacher_mode(tmp_path, teacher_run, method, mode, recorded):
    config = Config().with_overrides(
        {
            **TINY,
            "train.objective": "distill",
            "distill.teacher": str(teacher_run),
            "distill.method": method,
            "distill.teacher_mode": mode,
        }
    )
    validate_config(config)
    summary = Trainer.create(config, tmp_path / "run").fit()
    assert summary["teacher_mode"] == recorded
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["teacher_mode"] == recorded


def test_unknown_teacher_mode_is_rejected(teacher_run):
    config = Config().with_overrides(
        {
            **TINY,
            "train.objective": "distill",
            "distill.teacher": str(teacher_run),
            "distill.teacher_mode": "fast",
        }
    )
    with pytest.raises(ConfigError, match="distill.teacher_mode 'fast'.*fused-cl"):
        validate_config(config)
