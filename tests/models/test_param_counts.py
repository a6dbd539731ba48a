"""Parameter counts and feature sizes match the CRD benchmark's definitions (100 classes)."""

from __future__ import annotations

import pytest

from scns.models import create_model, model_summary

# (params as the benchmark prints them, in millions; pooled feature size)
REFERENCE: dict[str, tuple[float, int]] = {
    "resnet8": (0.08, 64),
    "resnet14": (0.18, 64),
    "resnet20": (0.28, 64),
    "resnet32": (0.47, 64),
    "resnet44": (0.67, 64),
    "resnet56": (0.86, 64),
    "resnet110": (1.74, 64),
    "resnet8x4": (1.23, 256),
    "resnet32x4": (7.43, 256),
    "wrn_16_1": (0.18, 64),
    "wrn_16_2": (0.70, 128),
    "wrn_40_1": (0.57, 64),
    "wrn_40_2": (2.26, 128),
    "vgg8": (3.97, 512),
    "vgg11": (9.28, 512),
    "vgg13": (9.46, 512),
    "vgg16": (14.8, 512),
    "vgg19": (20.1, 512),
    "ResNet18": (11.2, 512),
    "ResNet50": (23.7, 2048),
    "MobileNetV2": (0.81, 1280),
    "ShuffleV1": (0.95, 960),
    "ShuffleV2": (1.36, 1024),
}


def _printed(count: int) -> float:
    """The precision the table is printed at: 2 decimals below 10M, 1 decimal from 10M."""
    millions = count / 1e6
    return round(millions, 1) if millions >= 10 else round(millions, 2)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_param_count_and_feature_dim_at_100_classes(name: str) -> None:
    params_m, feature_dim = REFERENCE[name]
    summary = model_summary(name, num_classes=100)
    assert _printed(summary["params"]) == params_m, f"{name}: {summary['params']} parameters"
    assert summary["feature_dim"] == feature_dim


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_2", "vgg8", "MobileNetV2", "ShuffleV1", "ShuffleV2"])
def test_meta_summary_equals_a_real_build(name: str) -> None:
    model = create_model(name, num_classes=37)
    assert model_summary(name, 37) == {
        "params": sum(p.numel() for p in model.parameters()),
        "feature_dim": model.feature_dim,
    }
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_classifier_size_scales_with_num_classes() -> None:
    # Only the final linear layer depends on num_classes: (feature_dim + 1) weights per class.
    for name, (_, feature_dim) in REFERENCE.items():
        delta = model_summary(name, 101)["params"] - model_summary(name, 100)["params"]
        assert delta == feature_dim + 1, name
