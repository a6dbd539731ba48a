"""The frozen-inference path: conv+BN folding against the unfused modules, each mode against the plain forward."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from scns.models import create_model
from scns.models import frozen as frozen_module
from scns.models.frozen import (
    AUTO_MODE,
    COMPILE_MIN_CALLS,
    PLANS,
    TEACHER_MODES,
    FrozenNet,
    fold_conv_bn,
    freeze_for_inference,
    fuse_conv_bn,
    resolve_mode,
)

# fp32 tolerance of a folded network against the unfused one: the fold changes the order of a
# per-channel scale and a sum, so differences are a few float32 ulps of the activations
# (|logits| ~ 1-10 here): measured max abs difference ~1e-6 on these models.
FP32_ATOL = 1e-4


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters (as after training)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=g))
    return model.eval()


def images(b: int = 16, size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "conv_kwargs",
    [
        {"kernel_size": 3, "padding": 1, "bias": False},
        {"kernel_size": 3, "padding": 1, "stride": 2, "bias": True},
        {"kernel_size": 3, "padding": 1, "groups": 4, "bias": False},
        {"kernel_size": 1, "bias": False},
    ],
)
@pytest.mark.parametrize("affine", [True, False])
def test_fused_conv_equals_conv_then_bn(conv_kwargs, affine):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, **conv_kwargs)
    bn = nn.BatchNorm2d(12, affine=affine, eps=1e-3)
    if affine:
        bn.weight.data.copy_(torch.linspace(0.5, 1.5, 12))
        bn.bias.data.copy_(torch.linspace(-0.2, 0.3, 12))
    bn.running_mean.copy_(torch.linspace(-0.5, 0.5, 12))
    bn.running_var.copy_(torch.linspace(0.3, 2.0, 12))
    bn.eval()
    x = torch.randn(4, 8, 10, 10)
    expected = bn(conv(x))
    fused = fuse_conv_bn(conv, bn)
    assert fused.bias is not None and fused.stride == conv.stride and fused.groups == conv.groups
    assert (fused(x) - expected).abs().max().item() < 1e-5


def test_fold_rejects_bn_without_running_stats():
    with pytest.raises(ValueError, match="running statistics"):
        fuse_conv_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))


@pytest.mark.parametrize(
    ("name", "pairs"),
    # resnet8: stem + 3 blocks x 2 convs + 2 projection shortcuts; wrn (pre-activation): none
    [("resnet8", 9), ("vgg8", 5), ("wrn_16_1", 0), ("ShuffleV2", None), ("MobileNetV2", None)],
)
def test_fold_matches_unfused_zoo_model(name, pairs):
    torch.manual_seed(0)
    model = randomise_bn(create_model(name, num_classes=10))
    x = images(4, 32)
    with torch.no_grad():
        ref_logits, ref_features = model(x)
        folded = fold_conv_bn(model)
        logits, features = model(x)
    if pairs is not None:
        assert folded == pairs
    else:
        assert folded > 0
    assert (logits - ref_logits).abs().max().item() < FP32_ATOL
    assert (features - ref_features).abs().max().item() < FP32_ATOL


def test_resolve_mode_per_device_and_errors(monkeypatch):
    assert resolve_mode("auto", "cpu") == AUTO_MODE["cpu"] == "fused-cl"
    # long CPU runs compile when a C++ compiler exists; short ones never pay the compile time
    monkeypatch.setattr(frozen_module, "can_compile_on_cpu", lambda: True)
    assert resolve_mode("auto", "cpu", expected_calls=COMPILE_MIN_CALLS) == "compiled"
    assert resolve_mode("auto", "cpu", expected_calls=COMPILE_MIN_CALLS - 1) == "fused-cl"
    assert resolve_mode("auto", "cuda", expected_calls=10**6) == "fused-cl-bf16"
    monkeypatch.setattr(frozen_module, "can_compile_on_cpu", lambda: False)
    assert resolve_mode("auto", "cpu", expected_calls=10**6) == "fused-cl"
    assert resolve_mode("eager", "cpu", expected_calls=10**6) == "eager"
    assert resolve_mode("auto", torch.device("cuda")) == AUTO_MODE["cuda"] == "fused-cl-bf16"
    assert not PLANS[AUTO_MODE["cpu"]].bf16  # bf16 autocast is never chosen for a CPU
    assert set(TEACHER_MODES) == {"auto", *PLANS}
    with pytest.raises(ValueError, match="Valid choices: auto, eager"):
        resolve_mode("fast", "cpu")


@pytest.mark.parametrize("mode", ["eager", "fused", "fused-cl", "auto"])
def test_frozen_modes_match_plain_forward(mode):
    torch.manual_seed(0)
    model = randomise_bn(create_model("resnet8x4", num_classes=20))
    x = images(32, 16)
    with torch.no_grad():
        ref_logits, ref_features = model(x)
    frozen = freeze_for_inference(model, "cpu", mode)
    logits, features = frozen(x)
    assert frozen.mode == resolve_mode(mode, "cpu")
    assert logits.dtype == features.dtype == torch.float32
    assert (logits - ref_logits).abs().max().item() < FP32_ATOL
    assert (features - ref_features).abs().max().item() < FP32_ATOL
    assert torch.equal(logits.argmax(1), ref_logits.argmax(1))
    # the original network is not folded in place
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0
    with torch.no_grad():
        assert torch.equal(model(x)[0], ref_logits)


def test_bf16_mode_close_to_fp32():
    # bf16 has an 8-bit mantissa: the logits move by about 1% of their scale; the stated tolerance
    # is 5% of the largest |logit|, and at least 90% of the top-1 predictions must agree.
    torch.manual_seed(0)
    model = randomise_bn(create_model("resnet8", num_classes=10))
    x = images(64, 16)
    with torch.no_grad():
        ref_logits, _ = model(x)
    logits, features = freeze_for_inference(model, "cpu", "fused-cl-bf16")(x)
    assert features.shape == (64, model.feature_dim)
    assert (logits.float() - ref_logits).abs().max().item() < 0.05 * ref_logits.abs().max().item()
    assert (logits.float().argmax(1) == ref_logits.argmax(1)).float().mean().item() >= 0.9


def test_frozen_outputs_feed_autograd_and_stay_frozen():
    model = randomise_bn(create_model("resnet8", num_classes=10))
    frozen = freeze_for_inference(model, "cpu", "fused-cl")
    frozen.train()
    assert not frozen.training and not frozen.net.training
    assert not any(p.requires_grad for p in frozen.parameters())
    assert (frozen.feature_dim, frozen.num_classes) == (model.feature_dim, 10)
    head = nn.Linear(model.feature_dim, 4)
    logits, features = frozen(images(8, 16))
    # inference-mode tensors would raise here ("cannot be saved for backward")
    (head(features).square().sum() + logits.softmax(1).sum()).backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()
    assert isinstance(frozen, FrozenNet) and "mode=fused-cl" in repr(frozen)


@pytest.mark.slow
def test_compiled_mode_matches_plain_forward():
    torch.manual_seed(0)
    model = randomise_bn(create_model("resnet8", num_classes=10))
    x = images(16, 16)
    with torch.no_grad():
        ref_logits, ref_features = model(x)
    frozen = freeze_for_inference(model, "cpu", "compiled")
    logits, features = frozen(x)
    assert (logits - ref_logits).abs().max().item() < FP32_ATOL
    assert (features - ref_features).abs().max().item() < FP32_ATOL
    assert torch.equal(logits.argmax(1), ref_logits.argmax(1))
    # a second batch shape (an epoch's last partial batch) gets its own graph, with the same outputs
    with torch.no_grad():
        ref_small, _ = model(x[:5])
    assert (frozen(x[:5])[0] - ref_small).abs().max().item() < FP32_ATOL
    # outputs feed autograd like every other mode's
    head = nn.Linear(model.feature_dim, 3)
    head(features).sum().backward()
    assert head.weight.grad is not None


TRAINED_TEACHER = Path(__file__).parents[2] / "benchmarks/results/cpu-quick/runs/c100-teacher-resnet20"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fused", "fused-cl", "compiled"])
def test_trained_teacher_same_top1_on_cifar100_test_set(mode):
    # the cpu-quick grid's trained CIFAR-100 resnet20 over all 10,000 test images: stated tolerance
    # 1e-3 on logits and features (measured ~1e-5), and every top-1 prediction the same
    from scns.data import get_spec, load_dataset
    from scns.data.augment import BatchTransform
    from scns.train.checkpoint import load_trained_model

    root = os.environ.get("SCNS_DATA_DIR")
    if not root or not (TRAINED_TEACHER / "checkpoints" / "last.pt").is_file():
        pytest.skip("needs SCNS_DATA_DIR with CIFAR-100 and the cpu-quick resnet20 teacher checkpoint")
    model, _ = load_trained_model(TRAINED_TEACHER / "checkpoints" / "last.pt")
    test = load_dataset("cifar100", root, "test")
    transform = BatchTransform.from_spec(get_spec("cifar100"), train=False)
    frozen = freeze_for_inference(model, "cpu", mode)
    worst = [0.0, 0.0]
    for start in range(0, len(test.labels), 500):
        x = transform(test.images[start : start + 500])
        with torch.no_grad():
            ref_logits, ref_features = model(x)
        logits, features = frozen(x)
        worst = [
            max(worst[0], (logits - ref_logits).abs().max().item()),
            max(worst[1], (features - ref_features).abs().max().item()),
        ]
        assert torch.equal(logits.argmax(1), ref_logits.argmax(1))
    assert worst[0] < 1e-3 and worst[1] < 1e-3, worst
