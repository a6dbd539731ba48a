"""ShuffleNet V2 (1x) of the CRD benchmark (``ShuffleV2``: widths 116/232/464, 1024 features).

Weights keep PyTorch's default initialisation, as in the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import channel_shuffle, conv_bn
from scns.models.zoo import register_model


def _branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """1x1-BN-ReLU, 3x3 depthwise (stride)-BN, 1x1-BN-ReLU: [B, C_in, H, W] -> [B, C_out, H / s, W / s]."""
    return nn.Sequential(
        conv_bn(in_channels, out_channels, 1),
        conv_bn(out_channels, out_channels, 3, stride=stride, groups=out_channels, relu=False),
        conv_bn(out_channels, out_channels, 1),
    )


class SplitUnit(nn.Module):
    """Split channels in half, transform the second half, concatenate, shuffle. [B, C, H, W] -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.kept = channels // 2  # not ``half``: that would hide nn.Module.half()
        self.branch = _branch(channels - self.kept, channels - self.kept, 1)

    def forward(self, x: Tensor) -> Tensor:
        kept, transformed = x[:, : self.kept], x[:, self.kept :]
        return channel_shuffle(torch.cat([kept, self.branch(transformed)], 1), 2)


class DownUnit(nn.Module):
    """Two stride-2 branches on the full input, concatenated and shuffled.

    [B, C_in, H, W] -> [B, out_channels, H / 2, W / 2].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.left = nn.Sequential(
            conv_bn(in_channels, in_channels, 3, stride=2, groups=in_channels, relu=False),
            conv_bn(in_channels, mid, 1),
        )
        self.right = _branch(in_channels, mid, 2)

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], 1), 2)


class ShuffleNetV2(ZooModel):
    """1x1 stem (3 -> 24), three (down unit + split units) stages, 1x1 conv to ``head_channels``.

    x [B, 3, H, W] -> features [B, head_channels].
    """

    def __init__(
        self,
        widths: tuple[int, int, int],
        num_blocks: tuple[int, int, int],
        head_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__(feature_dim=head_channels, num_classes=num_classes)
        self.stem = conv_bn(3, 24, 1)
        in_channels = 24
        stages = []
        for width, count in zip(widths, num_blocks, strict=True):
            stages.append(
                nn.Sequential(DownUnit(in_channels, width), *[SplitUnit(width) for _ in range(count)])
            )
            in_channels = width
        self.layer1, self.layer2, self.layer3 = stages
        self.head = conv_bn(in_channels, head_channels, 1)
        self.fc = nn.Linear(head_channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return global_avg_pool(self.head(self.layer3(self.layer2(self.layer1(self.stem(x))))))


@register_model("ShuffleV2")
def shufflev2(num_classes: int) -> ShuffleNetV2:
    """ShuffleNet V2 1x: stage widths (116, 232, 464), 3/7/3 split units, 1024 features."""
    return ShuffleNetV2((116, 232, 464), (3, 7, 3), 1024, num_classes)
