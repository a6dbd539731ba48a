"""CIFAR ResNets of the CRD benchmark: resnet8 ... resnet110, resnet8x4, resnet32x4.

Three stages of ``n = (depth - 2) / 6`` basic blocks at strides 1, 2, 2 after a 3x3 stem; the
residual blocks are shared with the ImageNet-style ResNet18/50 (``resnet_imagenet.py``).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import conv_bn, init_kaiming_fan_out
from scns.models.zoo import register_model


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when shapes agree, else a strided 1x1 conv + BN projection."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv_bn(in_channels, out_channels, 1, stride=stride, relu=False)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, ReLU after the sum.

    [B, in_channels, H, W] -> [B, planes, H / stride, W / stride].
    """

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv_bn(in_channels, planes, 3, stride=stride),
            conv_bn(planes, planes, 3, relu=False),
        )
        self.shortcut = shortcut(in_channels, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.branch(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1x1-conv3x3(stride)-conv1x1 (x4 channels), each with BN, plus shortcut, ReLU after the sum.

    [B, in_channels, H, W] -> [B, 4 * planes, H / stride, W / stride].
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.branch = nn.Sequential(
            conv_bn(in_channels, planes, 1),
            conv_bn(planes, planes, 3, stride=stride),
            conv_bn(planes, out_channels, 1, relu=False),
        )
        self.shortcut = shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.branch(x) + self.shortcut(x))


def make_stage(
    block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, num_blocks: int, stride: int
) -> nn.Sequential:
    """``num_blocks`` blocks; the first one changes width and applies ``stride``.

    [B, in_channels, H, W] -> [B, planes * block.expansion, H / stride, W / stride].
    """
    out_channels = planes * block.expansion
    blocks = [block(in_channels, planes, stride)]
    blocks += [block(out_channels, planes, 1) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class CifarResNet(ZooModel):
    """ResNet for 32x32 inputs: stem conv3x3(3 -> w0), stages of widths w1, w2, w3 at strides 1, 2, 2.

    ``depth = 6n + 2`` (n basic blocks per stage). Features: [B, w3] after global average pooling.
    """

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int) -> None:
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
        super().__init__(feature_dim=widths[3], num_classes=num_classes)
        n = (depth - 2) // 6
        self.stem = conv_bn(3, widths[0], 3)
        self.layer1 = make_stage(BasicBlock, widths[0], widths[1], n, stride=1)
        self.layer2 = make_stage(BasicBlock, widths[1], widths[2], n, stride=2)
        self.layer3 = make_stage(BasicBlock, widths[2], widths[3], n, stride=2)
        self.fc = nn.Linear(widths[3], num_classes)
        init_kaiming_fan_out(self)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return global_avg_pool(x)


_NARROW = (16, 16, 32, 64)
_WIDE = (32, 64, 128, 256)


def _cifar_resnet(name: str, depth: int, widths: tuple[int, int, int, int]) -> None:
    def factory(num_classes: int) -> CifarResNet:
        return CifarResNet(depth, widths, num_classes)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"CIFAR ResNet-{depth}, stage widths {widths[1:]}, {widths[3]} features."
    register_model(name)(factory)


for _depth in (8, 14, 20, 32, 44, 56, 110):
    _cifar_resnet(f"resnet{_depth}", _depth, _NARROW)
_cifar_resnet("resnet8x4", 8, _WIDE)
_cifar_resnet("resnet32x4", 32, _WIDE)
