"""Batched augmentation on the device: random crop with zero padding, horizontal flip, normalisation.

Whole-batch tensor ops (airbench style): no per-sample Python. Layout follows the dtype: uint8
tensors are stored images [B, H, W, C]; floating tensors are model inputs [B, C, H, W].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from scns.data.datasets import DatasetSpec


def sample_crop_flip(
    batch: int, pad: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Tensor]:
    """Draw crop offsets and flips for ``batch`` images.

    Returns:
        dy, dx: int64 [B], offsets into the padded image, uniform on ``[0, 2 * pad]``.
        flip: bool [B], each True with probability 1/2.
    """
    offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator, device=device)
    flip = torch.randint(0, 2, (batch,), generator=generator, device=device).bool()
    return offsets[0], offsets[1], flip


def crop_flip(x: Tensor, pad: int, dy: Tensor, dx: Tensor, flip: Tensor) -> Tensor:
    """Crop each image at its offset from the zero-padded image, then mirror it where ``flip``.

    Args:
        x: uint8 [B, H, W, C] or floating [B, C, H, W].
        pad: zero padding on every side.
        dy, dx: int64 [B] offsets in ``[0, 2 * pad]`` (``pad`` leaves the image where it was).
        flip: bool [B].

    Returns:
        Same shape and dtype as ``x``: ``out[b, i, j] = padded[b, dy + i, dx + j']`` with
        ``j' = W - 1 - j`` where flipped, else ``j``.
    """
    channels_last = x.dtype == torch.uint8
    v = x if channels_last else x.permute(0, 2, 3, 1)  # a view: index spatial dims uniformly
    b, h, w, c = v.shape
    hp, wp = h + 2 * pad, w + 2 * pad
    padded = v.new_zeros(b, hp, wp, c)
    padded[:, pad : pad + h, pad : pad + w] = v
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = dy[:, None] + ar_h  # [B, H]
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)  # [B, W]
    # a single index_select of whole pixels (rows of C values) from the flattened padded batch
    pixel = ((torch.arange(b, device=x.device)[:, None] * hp + rows) * wp)[:, :, None] + cols[:, None, :]
    out = padded.view(b * hp * wp, c).index_select(0, pixel.view(-1)).view(b, h, w, c)
    return out if channels_last else out.permute(0, 3, 1, 2)


def random_crop_flip(
    x: Tensor, pad: int, generator: torch.Generator | None = None, flip: bool = True
) -> Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip (p = 1/2) of a whole batch.

    Args:
        x: uint8 [B, H, W, C] or floating [B, C, H, W], on any device.
        pad: zero padding on every side (4 for 32 px, 8 for 64 px).
        generator: a ``torch.Generator`` on ``x.device`` for reproducible draws.
        flip: False crops only (for images a mirror changes the class of, such as digits); the
            same draws are made, so the crops do not depend on it.

    Returns:
        Same shape and dtype as ``x``.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    dy, dx, mirror = sample_crop_flip(x.shape[0], pad, generator, x.device)
    return crop_flip(x, pad, dy, dx, mirror if flip else torch.zeros_like(mirror))


def normalize(
    x: Tensor,
    mean: Sequence[float] | Tensor,
    std: Sequence[float] | Tensor,
    *,
    channels_last: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """uint8 [B, H, W, C] -> ``(x / 255 - mean) / std`` as ``dtype`` [B, C, H, W].

    With ``channels_last`` the result is in ``torch.channels_last`` memory format (for convolutions
    on CUDA).
    """
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"normalize expects uint8 [B, H, W, C], got {x.dtype} {list(x.shape)}")
    mean_t = torch.as_tensor(mean, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    # Work in contiguous [B, C, H, W]: per-channel broadcasting over a last dim of 3 is slow on CPU.
    y = x.permute(0, 3, 1, 2).contiguous().to(dtype)
    y = y.sub_(mean_t * 255.0).div_(std_t * 255.0)
    return y.contiguous(memory_format=torch.channels_last) if channels_last else y


class BatchTransform:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W]; training adds random crop and flip.

    Example::

        transform = BatchTransform.from_spec(get_spec("cifar10"), train=True)
        x = transform(images_uint8, generator)
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        pad: int = 0,
        train: bool = True,
        channels_last: bool = False,
        flip: bool = True,
    ) -> None:
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one entry per channel and std > 0, got {mean} / {std}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.pad = pad
        self.train = train
        self.channels_last = channels_last
        self.flip = flip
        self._stats: dict[torch.device, tuple[Tensor, Tensor]] = {}

    @classmethod
    def from_spec(cls, spec: DatasetSpec, train: bool, channels_last: bool = False) -> BatchTransform:
        """Crop padding and statistics of ``spec``; ``train=False`` only normalises."""
        return cls(
            spec.mean,
            spec.std,
            pad=spec.crop_padding,
            train=train,
            channels_last=channels_last,
            flip=spec.hflip,
        )

    def _device_stats(self, device: torch.device) -> tuple[Tensor, Tensor]:
        # Built once per device, so steps make no host-to-device copies.
        if device not in self._stats:
            self._stats[device] = (
                torch.tensor(self.mean, device=device),
                torch.tensor(self.std, device=device),
            )
        return self._stats[device]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.train:
            x = random_crop_flip(x, self.pad, generator, flip=self.flip)
        mean, std = self._device_stats(x.device)
        return normalize(x, mean, std, channels_last=self.channels_last)

    def __repr__(self) -> str:
        return f"BatchTransform(train={self.train}, pad={self.pad}, mean={self.mean}, std={self.std})"
