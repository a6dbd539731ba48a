"""VGG with BatchNorm of the CRD benchmark (its ``vgg8`` ... ``vgg19`` are the ``_bn`` variants).

Five conv blocks (3x3 conv with bias, BN, ReLU) without the classic FC layers; max-pool after
blocks 0-2, global average pool after block 4: features [B, 512]. At 32 px block 4 runs at 4x4
like block 3; larger inputs (e.g. 64 px) get the extra max-pool before block 4, as in the reference.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from scns.models.base import ZooModel, global_avg_pool
from scns.models.layers import init_kaiming_fan_out
from scns.models.zoo import register_model

# Output widths of the convs in each of the five blocks.
CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg8": ((64,), (128,), (256,), (512,), (512,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


def _block(in_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    """[B, in_channels, H, W] -> [B, widths[-1], H, W]: (conv3x3 + bias, BN, ReLU) per width."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers)


class VGG(ZooModel):
    """x [B, 3, H, W] -> features [B, 512]."""

    def __init__(self, config: tuple[tuple[int, ...], ...], num_classes: int) -> None:
        super().__init__(feature_dim=config[-1][-1], num_classes=num_classes)
        in_channels = 3
        blocks = []
        for widths in config:
            blocks.append(_block(in_channels, widths))
            in_channels = widths[-1]
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(in_channels, num_classes)
        init_kaiming_fan_out(self, linear_std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        for block in self.blocks[:3]:
            x = F.max_pool2d(block(x), 2)
        x = self.blocks[3](x)
        # The reference pools before block 4 only for 64 px inputs (8x8 maps here); pooling whenever
        # the maps are larger than 4x4 reproduces that for 32 and 64 px.
        if min(x.shape[-2:]) > 4:
            x = F.max_pool2d(x, 2)
        return global_avg_pool(self.blocks[4](x))


def _vgg(name: str) -> None:
    def factory(num_classes: int) -> VGG:
        return VGG(CONFIGS[name], num_classes)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"{name} with BatchNorm, blocks {CONFIGS[name]}, 512 features."
    register_model(name)(factory)


for _name in CONFIGS:
    _vgg(_name)
