"""Wide ResNets of the CRD benchmark: wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2.

Pre-activation blocks (BN-ReLU before each conv); ``depth = 6n + 4``; stage widths
16k, 32k, 64k for widen factor k; features are the BN-ReLU'd last stage, pooled: [B, 64k].
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import init_kaiming_fan_out
from scns.models.zoo import register_model


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3(stride)-BN-ReLU-(dropout)-conv3x3 plus shortcut.

    When the shape changes, the shortcut is a 1x1 conv applied to the *activated* input (as in the
    reference WRN); otherwise it is the raw input. [B, C_in, H, W] -> [B, C_out, H / s, W / s].
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv(in_channels, out_channels, 3, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv(out_channels, out_channels, 3)
        self.drop_rate = drop_rate
        self.projection = (
            _conv(in_channels, out_channels, 1, stride)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        activated = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(activated)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        residual = x if self.projection is None else self.projection(activated)
        return out + residual


class WideResNet(ZooModel):
    """x [B, 3, H, W] -> features [B, 64 * widen_factor]."""

    def __init__(self, depth: int, widen_factor: int, num_classes: int, drop_rate: float = 0.0) -> None:
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        super().__init__(feature_dim=widths[3], num_classes=num_classes)
        n = (depth - 4) // 6
        self.stem = _conv(3, widths[0], 3)
        stages = []
        for in_ch, out_ch, stride in zip(widths[:3], widths[1:], (1, 2, 2), strict=True):
            blocks = [PreActBlock(in_ch, out_ch, stride, drop_rate)]
            blocks += [PreActBlock(out_ch, out_ch, 1, drop_rate) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        init_kaiming_fan_out(self)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return global_avg_pool(F.relu(self.bn(x)))


def _wrn(depth: int, widen_factor: int) -> None:
    name = f"wrn_{depth}_{widen_factor}"

    def factory(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
        return WideResNet(depth, widen_factor, num_classes, drop_rate)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"WRN-{depth}-{widen_factor}: {64 * widen_factor} features."
    register_model(name)(factory)


for _depth, _k in ((16, 1), (16, 2), (40, 1), (40, 2)):
    _wrn(_depth, _k)
