"""Every shipped preset loads, names real models/datasets and passes the method checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from scns.config import PRESETS_DIR, Config, ConfigError, is_shared_base, preset_names
from scns.data import get_spec
from scns.models import MODELS
from scns.train.validate import validate_method

CONFIGS = PRESETS_DIR
PRESETS = sorted(p for p in CONFIGS.rglob("*.yaml") if not is_shared_base(p))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_preset_is_valid(path):
    config = Config.load(path)
    get_spec(config.data.dataset)
    MODELS.get(config.model.name)
    validate_method(config)
    if config.train.objective == "distill":
        teacher, student = path.stem.removesuffix("-quick").split("-")
        assert (config.distill.teacher_model, config.model.name) == (teacher, student)
        assert config.distill.teacher.endswith(
            f"-{teacher}-teacher" + ("-quick" if path.stem.endswith("quick") else "")
        )
        expected_lr = 0.01 if student in ("MobileNetV2", "ShuffleV2") else 0.05
        assert config.optim.lr == expected_lr
        assert (config.data.batch_size, config.optim.weight_decay) == (64, 5e-4)
    if path.stem.endswith("quick"):
        assert config.train.epochs <= 3
    elif config.data.dataset != "cifar10":
        assert config.train.epochs == 240 and config.optim.milestones == (150, 180, 210)


def test_all_crd_pairs_have_presets():
    names = {p.stem for p in PRESETS}
    for pair in (
        "resnet32x4-resnet8x4",
        "wrn_40_2-wrn_16_2",
        "resnet56-resnet20",
        "vgg13-vgg8",
        "ResNet50-MobileNetV2",
        "resnet32x4-ShuffleV2",
        "ResNet18-MobileNetV2",
    ):
        assert pair in names and f"{pair}-quick" in names


def test_presets_load_by_name_and_through_the_checkout_link():
    assert len(preset_names()) == len(PRESETS)
    by_name = Config.load("cifar100/resnet56-resnet20")
    assert by_name == Config.load(PRESETS_DIR / "cifar100" / "resnet56-resnet20.yaml")
    assert by_name == Config.load("configs/cifar100/resnet56-resnet20.yaml")  # README's paths
    checkout_link = Path(__file__).resolve().parents[1] / "configs"
    if checkout_link.exists():  # a source checkout: configs/ is the same folder
        assert checkout_link.resolve() == PRESETS_DIR.resolve()
    with pytest.raises(ConfigError, match="nor a shipped preset"):
        Config.load("cifar100/resnet57-resnet20")


def test_paper_grids_take_their_runs_from_the_presets():
    # the CRD schedule, pair list, batch, lr and K live in the presets only: each paper cell's config is
    # its preset's, except what the grid sets (method, sampler, seed, run name, teacher location)
    from scns.train.grid import cell_config
    from scns.train.protocols import PAPER_PRESETS, paper

    cells = {c.name: c for c in paper()}
    for name in PAPER_PRESETS:
        preset = Config.load(name)
        t, s = preset.distill.teacher_model, preset.model.name
        student = cells[f"{preset.data.dataset}-{t}-{s}-kd-s0"]
        config = cell_config(student, Path("/runs"), {"data.data_dir": "/data"})
        assert (config.optim, config.data.batch_size, config.contrast.negatives) == (
            preset.optim,
            preset.data.batch_size,
            preset.contrast.negatives,
        )
        teacher = cell_config(cells[student.depends_on], Path("/runs"), {"data.data_dir": "/data"})
        teacher_preset = Config.load(f"{name.split('/')[0]}/teacher-{t}")
        assert (teacher.model, teacher.optim, teacher.train.epochs) == (
            teacher_preset.model,
            teacher_preset.optim,
            teacher_preset.train.epochs,
        )


def test_presets_command_lists_every_preset(capsys):
    from scns.cli import main

    assert main(["presets"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in preset_names())


def test_a_closed_pipe_ends_a_listing_quietly():
    # `scns presets | grep -q NAME`: the reader may leave before scns has written; scns must then
    # exit 0 without an error line (here the pipe's only reader is gone before anything is written)
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        writer = subprocess.run(
            [sys.executable, "-c", "import sys; from scns.cli import main; sys.exit(main(['presets']))"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert writer.returncode == 0, writer.stderr
    assert writer.stderr == ""


def test_every_distillation_preset_ships_the_shared_method_and_negatives():
    """The method and negatives live in ``distill_defaults.yaml`` only: no distillation preset sets
    its own, so the decisive experiment's answer reaches all of them by one edit."""
    import yaml

    shipped = yaml.safe_load((PRESETS_DIR / "distill_defaults.yaml").read_text())
    distill_presets = [p for p in PRESETS if Config.load(p).train.objective == "distill"]
    assert len(distill_presets) == 14
    for path in distill_presets:
        config = Config.load(path)
        assert config.distill.method == shipped["distill"]["method"], path
        assert {k: getattr(config.contrast, k) for k in shipped["contrast"]} == shipped["contrast"], path
        own = yaml.safe_load(path.read_text())
        assert "method" not in own.get("distill", {}) and "contrast" not in own, path
