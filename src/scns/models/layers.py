"""Small building blocks and initialisers shared by several model families."""

from __future__ import annotations

import math

from torch import Tensor, nn


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    relu: bool = True,
) -> nn.Sequential:
    """Bias-free ``kernel_size`` conv ('same' padding) + BatchNorm (+ ReLU).

    [B, in_channels, H, W] -> [B, out_channels, ceil(H / stride), ceil(W / stride)].
    """
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle, [B, C, H, W] -> [B, C, H, W].

    Input channel ``i * (C // groups) + j`` (group ``i``, position ``j``) moves to ``j * groups + i``,
    so the next grouped conv sees channels from every group.
    """
    if groups == 1:
        return x
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


def init_kaiming_fan_out(model: nn.Module, linear_std: float | None = None) -> None:
    """Initialise as the CRD benchmark does.

    Convs: He normal with fan_out = out_channels * k * k (std ``sqrt(2 / fan_out)``), bias 0.
    BatchNorm: weight 1, bias 0. Linear: unchanged when ``linear_std`` is None, else
    normal(0, ``linear_std``) with bias 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
