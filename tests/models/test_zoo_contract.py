"""Every registered model keeps the zoo contract: (logits, features), sizes, gradients, input errors."""

from __future__ import annotations

import pytest
import torch

from scns.models import ZooModel, create_model, list_models, model_summary
from scns.registry import UnknownNameError

#: The benchmark models (CRD's zoo): the registry holds at least these; the contract tests below sweep
#: whatever it holds, so a newly registered model is covered without editing this file.
BENCHMARK_NAMES = {
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2",
    "vgg8", "vgg11", "vgg13", "vgg16", "vgg19", "MobileNetV2", "ShuffleV1", "ShuffleV2",
    "ResNet18", "ResNet50",
}  # fmt: skip

NUM_CLASSES = 10


def _inputs(size: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_registry_holds_the_benchmark_names_sorted() -> None:
    assert BENCHMARK_NAMES <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_contract(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES)
    assert isinstance(model, ZooModel)
    assert (model.arch, model.num_classes) == (name, NUM_CLASSES)
    assert model.feature_dim == model_summary(name, NUM_CLASSES)["feature_dim"]

    model.train()
    logits, features = model(_inputs(32))
    assert logits.shape == (2, NUM_CLASSES)
    assert features.shape == (2, model.feature_dim)
    assert torch.isfinite(logits).all() and torch.isfinite(features).all()
    # features are exactly what the final linear layer sees
    torch.testing.assert_close(logits, model.fc(features), rtol=0, atol=0)

    # random weights so no gradient cancels by symmetry; the loss goes through logits AND features
    g = torch.Generator().manual_seed(1)
    loss = (logits * torch.randn(logits.shape, generator=g)).sum() + (
        features * torch.randn(features.shape, generator=g)
    ).sum()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", list_models())
def test_eval_mode_is_deterministic_per_sample_and_size_agnostic(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    x = _inputs(32)
    with torch.no_grad():
        logits_a, feats_a = model(x)
        logits_b, feats_b = model(x)
        logits_one, feats_one = model(x[1:])
        sized = {size: model(torch.randn(1, 3, *size)) for size in [(64, 64), (32, 48), (8, 8)]}
    torch.testing.assert_close(logits_a, logits_b, rtol=0, atol=0)
    torch.testing.assert_close(feats_a, feats_b, rtol=0, atol=0)
    # in eval mode a sample's output does not depend on the rest of the batch
    torch.testing.assert_close(feats_one, feats_a[1:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits_one, logits_a[1:], rtol=1e-4, atol=1e-5)
    # 64 px (Tiny-ImageNet), non-square and the smallest supported size all give the same shapes
    assert model.min_input_size == 8
    for size, (logits, features) in sized.items():
        assert logits.shape == (1, NUM_CLASSES), size
        assert features.shape == (1, model.feature_dim), size
        assert torch.isfinite(logits).all() and torch.isfinite(features).all(), size


def test_unknown_name_lists_valid_choices() -> None:
    with pytest.raises(UnknownNameError) as err:
        create_model("resnet9", num_classes=10)
    message = str(err.value)
    assert "resnet9" in message
    for name in list_models():
        assert name in message
    assert "Did you mean" in message  # close matches are suggested first


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_num_classes_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        create_model("resnet8", num_classes=bad)  # type: ignore[arg-type]


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['dropout'\]; valid options: drop_rate"):
        create_model("wrn_16_1", num_classes=10, dropout=0.3)
    with pytest.raises(TypeError, match="valid options: none"):
        create_model("resnet8", num_classes=10, width=2)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(3, 32, 32), r"\[B, 3, H, W\]; got shape \(3, 32, 32\)"),
        (torch.randn(2, 32, 32, 3), r"got shape \(2, 32, 32, 3\)"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "floating-point input; got torch.uint8"),
        (torch.randn(2, 3, 4, 4), "at least 8x8 px; got 4x4"),
    ],
)
def test_bad_input_gets_a_clear_error(x: torch.Tensor, match: str) -> None:
    model = create_model("resnet8", num_classes=10)
    with pytest.raises(ValueError, match=match):
        model(x)
