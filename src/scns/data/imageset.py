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
        split: ``"train"`` or ``"test"``.
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
        if self.split not in ("train", "test"):
            raise ValueError(f"ImageSet.split must be 'train' or 'test', got {self.split!r}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Height of the images (every built-in dataset is square)."""
        return self.images.shape[1]
