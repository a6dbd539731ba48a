"""``folder``: your own labelled images in the ImageFolder layout, decoded once into a cached array.

Layout under ``--data-dir PATH``::

    PATH/train/<class>/**/*.jpg|jpeg|png|bmp|gif|webp|tif|tiff    training images (any depth)
    PATH/val/<class>/**/*                                          optional: the evaluation split
    PATH/names.txt                                                 optional: "<folder> <class name>"

(``PATH/<class>/...`` without a ``train/`` folder works too.) Classes are the ``train/`` folders in
sorted order, as torchvision's ``ImageFolder`` numbers them. Without ``val/`` a fixed, stratified
10% of ``train/`` (``val=FRACTION``; at least one image per class) is held out as the test split.

Class names, which every similarity source reads (``--similarity glove|text|wordnet|...``):
- ``names.txt``: one ``<folder><whitespace><name>`` per line; a name with commas keeps its first
  part, so Tiny-ImageNet's or ImageNet's ``words.txt`` (``n01443537<TAB>goldfish, Carassius
  auratus``) works as it is; ``#`` comments and folders not in the dataset are ignored.
- otherwise the folder name, with ``_`` read as a space (``fire_truck`` -> ``fire truck``), or a
  WordNet synset name's word (``dog.n.01`` -> ``dog``).
Folders named by WordNet ids (``n01443537``) or synset names (``dog.n.01``) also give the WordNet
source their exact synsets (``ImageSet.wnids``).

Images are converted to RGB, scaled so the shorter side is ``size`` (bilinear, antialiased) and
centre-cropped to ``size`` x ``size``; options go after the name: ``--dataset folder:size=96,val=0.2``
(default size 64). Normalisation uses the ImageNet statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from scns.data.datasets import DatasetSpec, VariantOption, parse_variant_options, register_dataset
from scns.data.errors import DatasetError
from scns.data.image_cache import cached_images
from scns.data.imageset import ImageSet, carve_validation

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEFAULT_SIZE = 64
DEFAULT_VAL_FRACTION = 0.1
VAL_SEED = 0
NAMES_FILE = "names.txt"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CACHE_VERSION = "folder-v1"  # bump when the decoded format changes
_WNID = re.compile(r"n\d{8}")
_SYNSET = re.compile(r"[^.\s]+\.n\.\d{2}")
_LAYOUT = "train/<class>/*.jpg (and optionally val/<class>/*.jpg, names.txt)"


@dataclass(frozen=True)
class FolderOptions:
    """``size``: side of the decoded square images. ``val``: fraction of ``train/`` held out as the
    test split (None: the ``val/`` folder when there is one, else 0.1)."""

    size: int = DEFAULT_SIZE
    val: float | None = None


OPTIONS = {
    "size": VariantOption("PIXELS", int, 8, 1024, example="96", unit="pixels"),
    "val": VariantOption("FRACTION", float, 0, 1, example="0.2", exclusive=True),
}


def parse_options(text: str) -> FolderOptions:
    """``"size=96,val=0.2"`` -> ``FolderOptions(96, 0.2)``; ``""`` -> the defaults."""
    return FolderOptions(**parse_variant_options("folder", text, OPTIONS))  # type: ignore[arg-type]


def split_folders(root: Path) -> tuple[Path, Path | None]:
    """(training folder, evaluation folder or None) under ``root``."""
    if not root.is_dir():
        raise DatasetError(f"folder dataset: {root} is not a directory (expected {_LAYOUT})")
    if (root / "train").is_dir():
        val = root / "val"
        return root / "train", val if val.is_dir() else None
    return root, None


def class_folders(train_dir: Path) -> list[str]:
    """Sorted names of the class folders (hidden ones skipped)."""
    folders = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise DatasetError(
            f"folder dataset: {train_dir} holds {len(folders)} class folder(s); a classifier needs at "
            f"least 2 (expected {_LAYOUT})"
        )
    return folders


def count_classes(root: Path) -> int:
    """Number of classes of the folder dataset at ``root`` (its class folders)."""
    return len(class_folders(split_folders(root)[0]))


def class_names(root: Path, folders: list[str]) -> tuple[list[str], list[str] | None]:
    """Human-readable names of the class ``folders`` and their WordNet ids (None unless every
    folder is a WordNet id or a synset name). See the module docstring for the rules."""
    names_file = root / NAMES_FILE
    if names_file.is_file():
        mapping: dict[str, str] = {}
        for line in names_file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, name = line.partition("\t") if "\t" in line else line.partition(" ")
            name = name.split(",")[0].strip()
            if name:
                mapping.setdefault(key.strip(), name)
        missing = [f for f in folders if f not in mapping]
        if missing:
            raise DatasetError(
                f"{names_file} names no class for {len(missing)} folder(s): {', '.join(missing[:10])}"
                f"{' ...' if len(missing) > 10 else ''}; add a line '<folder> <class name>' for each"
            )
        names = [mapping[f] for f in folders]
    else:
        names = [(f.split(".")[0] if _SYNSET.fullmatch(f) else f).replace("_", " ") for f in folders]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        source = names_file if names_file.is_file() else "the folder names"
        raise DatasetError(
            f"folder dataset: class names must be unique, but {source} gives {', '.join(repeated[:10])} "
            f"to several folders; give them distinct names in {names_file}"
        )
    ids = folders if all(_WNID.fullmatch(f) or _SYNSET.fullmatch(f) for f in folders) else None
    return names, ids


def list_images(split_dir: Path, folders: list[str], require_all: bool) -> tuple[list[Path], np.ndarray]:
    """Image paths under ``split_dir/<folder>/`` (recursively, sorted) and their int64 labels."""
    known = set(folders)
    extra = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [f for f in extra if f not in known]
    if unknown:
        raise DatasetError(
            f"folder dataset: {split_dir} has class folder(s) {', '.join(unknown[:10])} that are not in "
            f"train/; every evaluation class must also be a training class"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        directory = split_dir / folder
        files = (
            sorted(
                p
                for p in directory.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(directory).parts)
            )
            if directory.is_dir()
            else []
        )
        if not files and require_all:
            raise DatasetError(
                f"folder dataset: no images in {directory} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise DatasetError(f"folder dataset: no images under {split_dir}")
    return paths, np.asarray(labels, dtype=np.int64)


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 [size, size, 3]: RGB, shorter side scaled to ``size`` (bilinear,
    antialiased when shrinking), centre crop. An image already ``size`` x ``size`` is read as is."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except FileNotFoundError as exc:
        raise DatasetError(f"{path} is missing (it was listed when the dataset was read)") from exc
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path} is not a readable image ({exc}); remove or replace the file") from exc
    w, h = rgb.size
    if (w, h) != (size, size):
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        rgb = rgb.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        rgb = rgb.crop((left, top, left + size, top + size))
    return np.asarray(rgb)


def _decode_split(
    directory: Path, split: str, paths: list[Path], labels: np.ndarray, size: int
) -> np.ndarray:
    version = f"{_CACHE_VERSION}\nsize={size}"
    return cached_images(
        "folder",
        version,
        directory,
        split,
        paths,
        labels,
        size,
        partial(decode_image, size=size),
        "folder dataset",
    )


def load_folder(
    root: Path | None, split: str, download: bool = False, options: FolderOptions = FolderOptions()
) -> ImageSet:
    """Read ``split`` (``train`` or ``test``) of the folder dataset at ``root``.

    Raises:
        DatasetError: a missing or malformed layout, an unreadable image (named), class names
            missing from names.txt, or a held-out fraction that leaves a class empty.
    """
    if root is None:
        raise ValueError("the folder dataset is read from files: pass a data directory (--data-dir)")
    if download:
        raise DatasetError("the folder dataset cannot be downloaded; --data-dir must point at your images")
    train_dir, val_dir = split_folders(root)
    folders = class_folders(train_dir)
    names, wnids = class_names(root, folders)

    def image_set(images: np.ndarray, labels: np.ndarray, split_name: str) -> ImageSet:
        return ImageSet(
            images=torch.from_numpy(images),
            labels=torch.from_numpy(labels),
            classes=names,
            name="folder",
            split=split_name,
            wnids=wnids,
        )

    if split == "test" and val_dir is not None and options.val is None:
        paths, labels = list_images(val_dir, folders, require_all=False)
        return image_set(_decode_split(val_dir, "val", paths, labels, options.size), labels, "test")
    if val_dir is not None and options.val is not None:
        raise DatasetError(
            f"folder dataset: {root} has a val/ folder and val={options.val} was given; use one: remove "
            "the val= option to evaluate on val/, or move val/ away to hold out a fraction of train/"
        )
    paths, labels = list_images(train_dir, folders, require_all=True)
    full = image_set(_decode_split(train_dir, "train", paths, labels, options.size), labels, "train")
    if val_dir is not None:
        return full
    fraction = DEFAULT_VAL_FRACTION if options.val is None else options.val
    size = max(round(fraction * len(full)), full.num_classes)  # at least one image of every class
    try:
        rest, held_out = carve_validation(full, size, seed=VAL_SEED)
    except ValueError as err:
        raise DatasetError(
            f"folder dataset: holding out val={fraction} of {len(full)} images ({size}) is impossible "
            f"with {full.num_classes} classes ({err}); add a val/ folder or change val="
        ) from None
    return rest if split == "train" else replace(held_out, split="test")


def folder_spec(options: str = "") -> DatasetSpec:
    """The spec of ``folder`` or ``folder:OPTIONS`` (e.g. ``size=96,val=0.2``)."""
    parsed = parse_options(options)
    return DatasetSpec(
        name=f"folder:{options}" if options else "folder",
        num_classes=None,
        image_size=parsed.size,
        crop_padding=max(1, parsed.size // 8),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        needs_data_dir=True,
        loader=partial(load_folder, options=parsed),
        variant=folder_spec,
        count_classes=count_classes,
    )


register_dataset(folder_spec())
