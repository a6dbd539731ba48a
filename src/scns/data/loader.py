"""``DeviceLoader``: the whole split lives on the training device; batches are index gathers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from scns.data.batch import Batch

Transform = Callable[[Tensor, torch.Generator | None], Tensor]
"""``transform(uint8 [B, H, W, 3], generator) -> model input`` (e.g. ``BatchTransform``)."""


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed that is a pure function of (seed, epoch, stream), well mixed across them."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class DeviceLoader:
    """Shuffled, augmented mini-batches from device-resident uint8 images.

    The images and labels are moved to ``device`` once. Each epoch's permutation and augmentation
    are drawn from ``torch.Generator``s on the device seeded from ``(seed, epoch)`` only, so a run
    resumed at epoch ``e`` sees exactly the batches of an uninterrupted run. With ``world_size > 1``
    every rank gets a disjoint, equally long, strided shard of the same permutation (the tail of
    ``N mod world_size`` samples is left out of that epoch). Iteration makes no host sync.

    Args:
        images: uint8 [N, H, W, 3].
        labels: int64 [N].
        batch_size: images per batch (per rank).
        device: where the data and batches live.
        transform: ``(uint8 [B, H, W, 3], generator) -> Tensor``; None yields the uint8 images.
        shuffle: a fresh permutation per epoch (False: the split's order).
        drop_last: drop the last incomplete batch.
        seed: base seed of permutations and augmentation.
        rank, world_size: this process's shard (DDP).

    Yields:
        ``Batch(x, y, index)``: x = ``transform`` output (float [B, 3, H, W]), y int64 [B], index
        int64 [B] = position of each sample in ``images``.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        *,
        device: torch.device | str,
        transform: Transform | None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {list(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape [N={images.shape[0]}], got {list(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device).contiguous()
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.transform = transform
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.num_samples = images.shape[0] // world_size if world_size > 1 else images.shape[0]
        if len(self) == 0:
            raise ValueError(
                f"{self.num_samples} samples per rank give no batch of {batch_size} with drop_last=True; "
                "use a smaller batch_size or drop_last=False"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation and augmentation the next iteration uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def _generator(self, stream: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch, stream))
        return generator

    def epoch_indices(self) -> Tensor:
        """int64 [num_samples]: this rank's sample order for the current epoch."""
        n = self.images.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator(0), device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        # every rank draws the same permutation (stream 0) and takes a strided slice of it
        return order[self.rank : self.num_samples * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[Batch]:
        order = self.epoch_indices()
        # augmentation differs per rank: stream 1 + rank
        augment_generator = self._generator(1 + self.rank)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[index]
            if self.transform is not None:
                x = self.transform(x, augment_generator)
            yield Batch(x, self.labels[index], index)
