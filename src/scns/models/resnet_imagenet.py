"""ImageNet-style ResNet18 / ResNet50 as used by the CRD benchmark on CIFAR-sized images.

Four stages of widths 64, 128, 256, 512 (x4 for bottlenecks) at strides 1, 2, 2, 2 after a
stride-1 3x3 stem (no max-pool), so 32 px and 64 px inputs keep useful spatial resolution;
global average pooling makes the feature size independent of the input size.
"""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import conv_bn, init_kaiming_fan_out
from scns.models.resnet import BasicBlock, Bottleneck, make_stage
from scns.models.zoo import register_model


class ResNet(ZooModel):
    """x [B, 3, H, W] -> features [B, 512 * block.expansion] (512 for ResNet18, 2048 for ResNet50)."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: tuple[int, int, int, int],
        num_classes: int,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__(feature_dim=512 * block.expansion, num_classes=num_classes)
        self.stem = conv_bn(3, 64, 3)
        in_channels = 64
        stages = []
        for planes, count, stride in zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2), strict=True):
            stages.append(make_stage(block, in_channels, planes, count, stride))
            in_channels = planes * block.expansion
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(in_channels, num_classes)
        init_kaiming_fan_out(self)
        if zero_init_residual:
            # Each residual branch then starts at zero, so every block begins as the identity.
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    branch_end = cast(nn.Sequential, m.branch[-1])  # conv_bn: Sequential(conv, bn[, relu])
                    nn.init.zeros_(cast(nn.BatchNorm2d, branch_end[1]).weight)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return global_avg_pool(x)


@register_model("ResNet18")
def resnet18(num_classes: int, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2], 512 features."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, zero_init_residual)


@register_model("ResNet50")
def resnet50(num_classes: int, zero_init_residual: bool = False) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3], 2048 features."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, zero_init_residual)
