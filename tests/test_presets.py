"""Every shipped preset loads, names real models/datasets and passes the method checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from scns.config import Config
from scns.data import get_spec
from scns.models import MODELS
from scns.train.validate import validate_method

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(p for p in CONFIGS.rglob("*.yaml") if "schedule" not in p.name)


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
