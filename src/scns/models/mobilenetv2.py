"""MobileNetV2 of the CRD benchmark ('mobile_half': width 0.5, expansion 6, 1280 features).

Stride-2 3x3 stem, inverted residual stages, a 1x1 conv to 1280 channels, global average pool.
"""

from __future__ import annotations

from torch import Tensor, nn

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import conv_bn, init_kaiming_fan_out
from scns.models.zoo import register_model

# (expansion, output channels at width 1, blocks, stride of the first block); expansion None = ``expand_ratio``.
STAGES: tuple[tuple[int | None, int, int, int], ...] = (
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """1x1 expand (xT) - 3x3 depthwise (stride) - 1x1 linear projection, each with BN; identity
    residual when stride is 1 and widths agree. [B, C_in, H, W] -> [B, C_out, H / s, W / s]."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.conv = nn.Sequential(
            conv_bn(in_channels, hidden, 1),
            conv_bn(hidden, hidden, 3, stride=stride, groups=hidden),
            conv_bn(hidden, out_channels, 1, relu=False),
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


class MobileNetV2(ZooModel):
    """x [B, 3, H, W] -> features [B, 1280] (``int(1280 * width_mult)`` when ``width_mult > 1``)."""

    def __init__(self, num_classes: int, width_mult: float = 0.5, expand_ratio: int = 6) -> None:
        if width_mult <= 0 or expand_ratio < 1:
            raise ValueError(
                f"MobileNetV2 needs width_mult > 0 and expand_ratio >= 1, got {width_mult}, {expand_ratio}"
            )
        last = int(1280 * width_mult) if width_mult > 1.0 else 1280
        super().__init__(feature_dim=last, num_classes=num_classes)
        in_channels = int(32 * width_mult)
        self.stem = conv_bn(3, in_channels, 3, stride=2)
        stages = []
        for expansion, channels, count, stride in STAGES:
            out_channels = int(channels * width_mult)
            blocks = []
            for i in range(count):
                t = expand_ratio if expansion is None else expansion
                blocks.append(InvertedResidual(in_channels, out_channels, stride if i == 0 else 1, t))
                in_channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.head = conv_bn(in_channels, last, 1)
        self.fc = nn.Linear(last, num_classes)
        init_kaiming_fan_out(self, linear_std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        return global_avg_pool(self.head(self.blocks(self.stem(x))))


@register_model("MobileNetV2")
def mobilenetv2(num_classes: int, width_mult: float = 0.5, expand_ratio: int = 6) -> MobileNetV2:
    """MobileNetV2 at width 0.5 by default (the benchmark's 'mobile_half'), 1280 features."""
    return MobileNetV2(num_classes, width_mult, expand_ratio)
