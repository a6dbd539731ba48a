"""ShuffleNet V1 of the CRD benchmark (``ShuffleV1``: groups 3, widths 240/480/960, 960 features).

Weights keep PyTorch's default initialisation, as in the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import channel_shuffle, conv_bn
from scns.models.zoo import register_model


class ShuffleUnit(nn.Module):
    """Grouped 1x1 - channel shuffle - 3x3 depthwise (stride) - grouped 1x1, ReLU after the merge.

    Stride 1: residual sum, [B, C, H, W] -> [B, C, H, W]. Stride 2: the branch output
    (``out_channels``) is concatenated with a 3x3 average-pooled input, giving
    [B, in_channels + out_channels, H / 2, W / 2].
    ``input_groups`` is the group count of the first 1x1 conv (1 for the network's first unit, whose
    24-channel input is too narrow to split).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, groups: int, input_groups: int
    ) -> None:
        super().__init__()
        mid = out_channels // 4
        self.input_groups = input_groups
        self.stride = stride
        self.reduce = conv_bn(in_channels, mid, 1, groups=input_groups)
        self.depthwise = conv_bn(mid, mid, 3, stride=stride, groups=mid)
        self.expand = conv_bn(mid, out_channels, 1, groups=groups, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        out = channel_shuffle(self.reduce(x), self.input_groups)
        out = self.expand(self.depthwise(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(ZooModel):
    """1x1 stem (3 -> 24), three stages each starting with a stride-2 unit. x -> features [B, widths[-1]]."""

    def __init__(
        self, widths: tuple[int, int, int], num_blocks: tuple[int, int, int], groups: int, num_classes: int
    ) -> None:
        super().__init__(feature_dim=widths[-1], num_classes=num_classes)
        self.stem = conv_bn(3, 24, 1)
        in_channels = 24
        stages: list[nn.Module] = []
        for width, count in zip(widths, num_blocks, strict=True):
            # The stride-2 unit's branch only makes the channels the concatenated shortcut lacks.
            input_groups = groups if stages else 1
            units = [ShuffleUnit(in_channels, width - in_channels, 2, groups, input_groups)]
            units += [ShuffleUnit(width, width, 1, groups, groups) for _ in range(count - 1)]
            stages.append(nn.Sequential(*units))
            in_channels = width
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(in_channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return global_avg_pool(self.layer3(self.layer2(self.layer1(self.stem(x)))))


@register_model("ShuffleV1")
def shufflev1(num_classes: int) -> ShuffleNetV1:
    """ShuffleNet V1, groups 3, stage widths (240, 480, 960), blocks (4, 8, 4); 960 features."""
    return ShuffleNetV1((240, 480, 960), (4, 8, 4), 3, num_classes)
