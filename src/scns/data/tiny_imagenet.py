"""Tiny-ImageNet-200 from the official folder layout, decoded once into a cached array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from scns.data.datasets import DatasetSpec, register_dataset
from scns.data.download import Archive
from scns.data.errors import DatasetError
from scns.data.image_cache import cache_dir, cached_images
from scns.data.imageset import ImageSet

__all__ = ["ARCHIVE", "SIZE", "cache_dir", "list_files", "load_tiny_imagenet", "locate", "read_classes"]

ARCHIVE = Archive(
    "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    "90528d7ca1a48142e341f4ef8d21d0de",
    "tiny-imagenet-200",
)
SIZE = 64
_CACHE_VERSION = "tiny_imagenet-v1"  # bump when the decoded format changes
_EXPECTED = "wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt"


def locate(root: Path) -> Path | None:
    """The ``tiny-imagenet-200`` folder under ``root`` (or ``root`` itself), None when absent."""
    for folder in (root / ARCHIVE.folder, root):
        if (folder / "wnids.txt").is_file():
            return folder
    return None


def read_classes(folder: Path) -> tuple[list[str], list[str]]:
    """Sorted WordNet ids (as torchvision's ImageFolder orders train/) and their first words.txt gloss."""
    try:
        wnids = sorted({w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()})
        glosses: dict[str, str] = {}
        with open(folder / "words.txt", encoding="utf-8") as f:
            for line in f:
                wnid, _, words = line.rstrip("\n").partition("\t")
                glosses[wnid] = words.split(",")[0].strip()
    except OSError as exc:
        raise DatasetError(f"cannot read the class lists in {folder}: {exc}; expected {_EXPECTED}") from exc
    unnamed = [w for w in wnids if not glosses.get(w)]
    if not wnids or unnamed:
        raise DatasetError(
            f"{folder / 'wnids.txt'} lists no classes"
            if not wnids
            else f"{folder / 'words.txt'} has no name for {unnamed[:5]}; re-download the dataset"
        )
    return wnids, [glosses[w] for w in wnids]


def list_files(folder: Path, split: str, wnids: list[str]) -> tuple[list[Path], np.ndarray]:
    """Image paths of ``split`` (test = the labelled val folder) and their int64 labels."""
    label_of = {w: i for i, w in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    if split == "train":
        for wnid in wnids:
            images = folder / "train" / wnid / "images"
            files = sorted(images.glob("*.JPEG")) if images.is_dir() else []
            if not files:
                raise DatasetError(f"no training images in {images} (expected {_EXPECTED})")
            paths += files
            labels += [label_of[wnid]] * len(files)
    else:
        annotations = folder / "val" / "val_annotations.txt"
        try:
            lines = annotations.read_text().splitlines()
        except OSError as exc:
            raise DatasetError(f"cannot read {annotations}: {exc}; expected {_EXPECTED}") from exc
        for lineno, line in enumerate(lines, 1):
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in label_of:
                raise DatasetError(
                    f"{annotations}:{lineno}: expected '<file>\\t<wnid from wnids.txt>...', got {line!r}"
                )
            paths.append(folder / "val" / "images" / fields[0])
            labels.append(label_of[fields[1]])
        if not paths:
            raise DatasetError(f"{annotations} lists no images")
    return paths, np.asarray(labels, dtype=np.int64)


def _decode_image(path: Path) -> np.ndarray:
    """One JPEG -> uint8 [64, 64, 3]; grayscale, CMYK and palette images become RGB."""
    try:
        with Image.open(path) as image:
            if image.size != (SIZE, SIZE):
                raise DatasetError(
                    f"{path} is {image.size[0]}x{image.size[1]}, Tiny-ImageNet images are 64x64"
                )
            return np.asarray(image.convert("RGB"))
    except DatasetError:
        raise
    except FileNotFoundError as exc:
        raise DatasetError(f"{path} is missing; re-download the dataset") from exc
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable image ({exc}); re-download the dataset") from exc


def load_tiny_imagenet(root: Path | None, split: str, download: bool = False) -> ImageSet:
    """Read ``split`` of Tiny-ImageNet-200 under ``root`` (``test`` = the labelled val folder).

    The decoded array is cached under ``cache_dir()/tiny_imagenet``, keyed by the files' sizes and
    mtimes, so later loads skip JPEG decoding.
    """
    if root is None:
        raise ValueError("this dataset is read from files: pass a data directory (--data-dir)")
    folder = locate(root)
    if folder is None and download:
        folder = ARCHIVE.fetch(root)
    if folder is None:
        raise DatasetError(
            f"tiny_imagenet: no {ARCHIVE.folder}/ folder in {root} (expected {_EXPECTED}). Run again "
            f"with --download to fetch {ARCHIVE.url} into {root}, or point --data-dir at the folder "
            f"that contains {ARCHIVE.folder}/."
        )
    wnids, classes = read_classes(folder)
    paths, labels = list_files(folder, split, wnids)
    images = cached_images(
        "tiny_imagenet",
        _CACHE_VERSION,
        folder,
        split,
        paths,
        labels,
        SIZE,
        lambda p: _decode_image(p),
        "Tiny-ImageNet",
    )
    return ImageSet(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        classes=classes,
        name="tiny_imagenet",
        split=split,
        wnids=wnids,
    )


register_dataset(
    DatasetSpec(
        name="tiny_imagenet",
        num_classes=200,
        image_size=SIZE,
        crop_padding=8,
        # Mean/std of all pixels of the real train images available offline (the 2,000-image official
        # sample, 10 per class, in ../shared/data), float64 on the [0, 1] scale. The widely used values for
        # the full 100,000-image train split differ by at most 0.004: (0.4802, 0.4481, 0.3975) / (0.2770,
        # 0.2691, 0.2821).
        mean=(0.4779, 0.4441, 0.3954),
        std=(0.2759, 0.2668, 0.2799),
        needs_data_dir=True,
        loader=load_tiny_imagenet,
        archive=ARCHIVE,
    )
)
