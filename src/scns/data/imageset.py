"""``ImageSet``: one split of an image classification dataset, held in memory as tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _check_labels(labels: object, field: str, n: int, num_classes: int) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"ImageSet.{field} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype != torch.int64 or labels.shape != (n,):
        raise ValueError(
            f"ImageSet.{field} must be int64 [N={n}], got {labels.dtype} {list(labels.shape)}; "
            "convert with torch.as_tensor(labels, dtype=torch.int64)"
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"ImageSet.{field} must lie in [0, {num_classes}) (one per class name), "
            f"got range [{int(labels.min())}, {int(labels.max())}]"
        )


@dataclass
class ImageSet:
    """One split of a dataset.

    Attributes:
        images: uint8 [N, H, W, 3], contiguous, on the CPU.
        labels: int64 [N], class ids in ``[0, len(classes))``.
        classes: human-readable class names, indexed by class id.
        name: dataset name (``"cifar100"``).
        split: ``"train"``, ``"test"`` or ``"val"`` (a part carved from the training split by
            :func:`carve_validation`).
        coarse_labels: optional int64 [N] superclass ids (CIFAR-100's 20 superclasses).
        coarse_classes: names of the superclasses; given exactly when ``coarse_labels`` is.
        wnids: optional WordNet ids per class (Tiny-ImageNet), same length as ``classes``.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    name: str
    split: str
    coarse_labels: Tensor | None = None
    coarse_classes: list[str] | None = None
    wnids: list[str] | None = None

    def __post_init__(self) -> None:
        x = self.images
        if not isinstance(x, Tensor):
            raise TypeError(f"ImageSet.images must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[-1] != 3:
            raise ValueError(
                f"ImageSet.images must be uint8 [N, H, W, 3] (channels last), got {x.dtype} "
                f"{list(x.shape)}; for [N, 3, H, W] arrays use images.permute(0, 2, 3, 1)"
            )
        if x.device.type != "cpu":
            raise ValueError(f"ImageSet.images must be on the CPU, got {x.device}; the loader moves them")
        self.images = x.contiguous()
        if not self.classes:
            raise ValueError("ImageSet.classes is empty; give one name per class")
        n = x.shape[0]
        _check_labels(self.labels, "labels", n, len(self.classes))
        if (self.coarse_labels is None) != (self.coarse_classes is None):
            raise ValueError("ImageSet.coarse_labels and coarse_classes must be given together")
        if self.coarse_labels is not None and self.coarse_classes is not None:
            _check_labels(self.coarse_labels, "coarse_labels", n, len(self.coarse_classes))
        if self.wnids is not None and len(self.wnids) != len(self.classes):
            raise ValueError(
                f"ImageSet.wnids has {len(self.wnids)} entries but there are {len(self.classes)} classes"
            )
        if self.split not in ("train", "test", "val"):
            raise ValueError(f"ImageSet.split must be 'train', 'test' or 'val', got {self.split!r}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Height of the images (every built-in dataset is square)."""
        return self.images.shape[1]


def carve_validation(train: ImageSet, size: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split ``train`` into (rest, validation) with ``size`` images held out, stratified by class.

    Each class gives ``size // C`` images (the first ``size % C`` classes in a seeded order give one
    more), chosen by a generator seeded with ``seed`` alone, so every run of a protocol (teacher and
    students, any training seed) holds out the same images. Both parts keep the training order of
    the images they contain.

    Raises:
        ValueError: ``size`` is not in [C, N - C] (every class must keep a sample on both sides) or a
            class has too few samples for its share.
    """
    n, c = len(train), train.num_classes
    if not c <= size <= n - c:
        raise ValueError(
            f"data.val_size={size} must be in [{c}, {n - c}] for {train.name} (N={n}, C={c}): every class "
            "needs samples on both sides of the split"
        )
    generator = torch.Generator().manual_seed(int(seed))
    per_class = torch.full((c,), size // c, dtype=torch.int64)
    per_class[torch.randperm(c, generator=generator)[: size % c]] += 1
    counts = torch.bincount(train.labels, minlength=c)
    short = torch.nonzero(per_class >= counts).flatten().tolist()
    if short:
        raise ValueError(
            f"data.val_size={size} asks classes {short[:10]} of {train.name} for as many validation images as "
            "they have; lower data.val_size"
        )
    # a random rank for every image, then the lowest-ranked per_class[y] of each class go to validation
    shuffled = torch.randperm(n, generator=generator)
    order = shuffled[torch.sort(train.labels[shuffled], stable=True).indices]  # by class, random within
    starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.empty(n, dtype=torch.int64)
    rank_in_class[order] = torch.arange(n) - starts[train.labels[order]]
    is_val = rank_in_class < per_class[train.labels]
    return _subset(train, ~is_val, "train"), _subset(train, is_val, "val")


def _subset(data: ImageSet, mask: Tensor, split: str) -> ImageSet:
    return ImageSet(
        images=data.images[mask],
        labels=data.labels[mask],
        classes=list(data.classes),
        name=data.name,
        split=split,
        coarse_labels=None if data.coarse_labels is None else data.coarse_labels[mask],
        coarse_classes=None if data.coarse_classes is None else list(data.coarse_classes),
        wnids=None if data.wnids is None else list(data.wnids),
    )
