"""Architecture details checked against closed forms and loop references."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scns.models import create_model
from scns.models.layers import channel_shuffle
from scns.models.resnet import BasicBlock

# The module whose output the features are the spatial mean of (WRN applies BN-ReLU first).
LAST_MAP = {
    "resnet20": "layer3",
    "resnet8x4": "layer3",
    "ResNet18": "layer4",
    "ResNet50": "layer4",
    "wrn_16_2": "bn",
    "vgg8": "blocks.4",
    "MobileNetV2": "head",
    "ShuffleV1": "layer3",
    "ShuffleV2": "head",
}


@pytest.mark.parametrize("name", sorted(LAST_MAP))
@pytest.mark.parametrize("size", [32, 64])
def test_features_are_the_spatial_mean_of_the_last_map(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    captured: list[torch.Tensor] = []
    model.get_submodule(LAST_MAP[name]).register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        _, features = model(torch.randn(2, 3, size, size))
    last = captured[0]
    if name.startswith("wrn"):
        last = torch.relu(last)
    assert last.shape[1] == model.feature_dim
    torch.testing.assert_close(features, last.mean(dim=(2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [32, 64])
def test_vgg_last_block_runs_at_4x4(size: int) -> None:
    # The reference adds a max-pool before block 4 for 64 px inputs only, so both sizes end at 4x4.
    model = create_model("vgg8", num_classes=5).eval()
    captured: list[torch.Tensor] = []
    model.get_submodule("blocks.4").register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
    assert captured[0].shape[-2:] == (4, 4)


def _convs(model: nn.Module, kernel_size: int | None = None) -> list[nn.Conv2d]:
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and (kernel_size is None or m.kernel_size == (kernel_size, kernel_size))
    ]


@pytest.mark.parametrize("depth", [8, 14, 20, 32, 44, 56, 110])
def test_cifar_resnet_depth_counts_3x3_convs_plus_fc(depth: int) -> None:
    assert len(_convs(create_model(f"resnet{depth}", num_classes=10), 3)) + 1 == depth


@pytest.mark.parametrize(("name", "depth"), [("ResNet18", 18), ("ResNet50", 50)])
def test_imagenet_resnet_depth_counts_branch_convs_plus_stem_and_fc(name: str, depth: int) -> None:
    model = create_model(name, num_classes=10)
    shortcuts = sum(len(_convs(m)) for n, m in model.named_modules() if n.endswith("shortcut"))
    assert len(_convs(model)) - shortcuts + 1 == depth


@pytest.mark.parametrize("depth", [8, 11, 13, 16, 19])
def test_vgg_depth_counts_convs_plus_the_three_classic_fc_layers(depth: int) -> None:
    assert len(_convs(create_model(f"vgg{depth}", num_classes=10))) + 3 == depth


def test_channel_shuffle_matches_a_loop_reference() -> None:
    batch, channels, groups = 2, 12, 3
    x = torch.randn(batch, channels, 4, 5)
    expected = torch.empty_like(x)
    per_group = channels // groups
    for i in range(groups):
        for j in range(per_group):
            expected[:, j * groups + i] = x[:, i * per_group + j]
    torch.testing.assert_close(channel_shuffle(x, groups), expected, rtol=0, atol=0)
    torch.testing.assert_close(channel_shuffle(x, 1), x, rtol=0, atol=0)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channel_shuffle(channels_last, groups), expected, rtol=0, atol=0)


def test_conv_init_is_he_normal_with_fan_out() -> None:
    torch.manual_seed(0)
    model = create_model("resnet32x4", num_classes=100)
    conv = model.layer3[-1].branch[1][0]  # 256 -> 256, 3x3: 589,824 weights
    expected = math.sqrt(2.0 / (256 * 3 * 3))
    # std of 5.9e5 normal draws is within 1% of sigma with overwhelming probability
    assert abs(conv.weight.std().item() / expected - 1) < 0.01
    assert abs(conv.weight.mean().item()) < 0.01 * expected
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in bns)


def test_vgg_and_mobilenet_classifier_init_is_normal_0_01_with_zero_bias() -> None:
    torch.manual_seed(0)
    for name in ("vgg13", "MobileNetV2"):
        fc = create_model(name, num_classes=1000).fc  # 512k / 1.28M draws
        assert abs(fc.weight.std().item() / 0.01 - 1) < 0.01, name
        assert bool((fc.bias == 0).all()), name
    assert bool((create_model("wrn_16_2", num_classes=10).fc.bias == 0).all())


def test_zero_init_residual_makes_identity_blocks_identity() -> None:
    torch.manual_seed(0)
    model = create_model("ResNet18", num_classes=10, zero_init_residual=True).eval()
    identity_blocks = [
        m for m in model.modules() if isinstance(m, BasicBlock) and isinstance(m.shortcut, nn.Identity)
    ]
    assert len(identity_blocks) == 5  # both blocks of stage 1, the second block of stages 2-4
    with torch.no_grad():
        for block in identity_blocks:
            channels = block.branch[0][0].in_channels
            x = torch.rand(2, channels, 4, 4)  # non-negative, as block inputs (post-ReLU) are
            torch.testing.assert_close(block(x), x, rtol=0, atol=0)


def test_wrn_dropout_is_active_only_in_training() -> None:
    torch.manual_seed(0)
    model = create_model("wrn_16_1", num_classes=10, drop_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x)[1], model(x)[1])
        model.eval()
        assert torch.equal(model(x)[1], model(x)[1])
    with pytest.raises(ValueError, match=r"drop_rate must be in \[0, 1\)"):
        create_model("wrn_16_1", num_classes=10, drop_rate=1.5)
