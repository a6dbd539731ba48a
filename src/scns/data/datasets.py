"""Dataset specs (sizes, normalisation, loader) in a registry, and ``load_dataset``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scns.data.download import Archive
from scns.data.imageset import ImageSet
from scns.registry import Registry

SPLITS = ("train", "test")

Loader = Callable[[Path | None, str, bool], ImageSet]
"""``loader(root, split, download) -> ImageSet``; ``root`` is None for datasets needing no data dir."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipeline needs to know about a dataset besides its pixels.

    Attributes:
        name: registry name (``NAME:OPTIONS`` for a variant, e.g. ``folder:size=96``).
        num_classes: number of classes; None for a dataset whose classes are its files' (``folder``:
            see ``count_classes``).
        image_size: height = width of the images.
        crop_padding: zero padding of the training random crop.
        mean, std: per-channel (R, G, B) statistics of the training split on the [0, 1] scale.
        needs_data_dir: whether ``load_dataset`` needs ``root``.
        loader: reads one split.
        archive: official archive for ``download=True`` (None: cannot be downloaded).
        variant: builds the spec of ``NAME:OPTIONS`` from ``OPTIONS`` (None: takes no options).
        count_classes: the number of classes of the data at a root, when ``num_classes`` is None.
        hflip: whether training augmentation mirrors images (False where a mirror changes the
            class, as for digits).
    """

    name: str
    num_classes: int | None
    image_size: int
    crop_padding: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    needs_data_dir: bool
    loader: Loader
    archive: Archive | None = None
    variant: Callable[[str], DatasetSpec] | None = None
    count_classes: Callable[[Path], int] | None = None
    hflip: bool = True


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to ``DATASETS`` under ``spec.name``."""
    DATASETS.register(spec.name)(lambda: spec)
    return spec


def get_spec(name: str) -> DatasetSpec:
    """The spec registered as ``name``; ``UnknownNameError`` lists the valid names.

    ``NAME:OPTIONS`` is a variant of a dataset that takes options (``folder:size=96,val=0.2``).
    """
    base, sep, options = name.partition(":")
    spec = DATASETS.build(base)
    if not sep:
        return spec
    if spec.variant is None:
        from scns.data.errors import DatasetError

        raise DatasetError(f"dataset '{base}' takes no options, got '{name}'")
    return spec.variant(options)


def dataset_num_classes(name: str, root: str | Path | None) -> int:
    """The number of classes of dataset ``name``: its spec's, or counted from the files under ``root``
    for a dataset whose classes are its folders (``folder``)."""
    spec = get_spec(name)
    if spec.num_classes is not None:
        return spec.num_classes
    if root is None or spec.count_classes is None:
        from scns.config import ConfigError

        raise ConfigError(
            f"dataset '{name}' is read from files: pass a data directory (--data-dir or SCNS_DATA_DIR)"
        )
    return spec.count_classes(Path(root).expanduser())


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def load_dataset(name: str, root: str | Path | None, split: str, download: bool = False) -> ImageSet:
    """Load one split of a registered dataset.

    Args:
        name: a name from ``list_datasets()``.
        root: data directory holding the dataset's official folder (ignored by ``digits``).
        split: ``"train"`` or ``"test"`` (Tiny-ImageNet's ``test`` is its labelled val folder).
        download: fetch the official archive into ``root`` when the folder is missing.

    Returns:
        An ``ImageSet`` with images uint8 [N, H, W, 3] and labels int64 [N].

    Raises:
        UnknownNameError: unknown dataset name. ValueError: bad split or missing root.
        DatasetError: missing, damaged or inconsistent files.
    """
    spec = get_spec(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if spec.needs_data_dir and root is None:
        raise ValueError(
            f"dataset '{name}' is read from files: pass a data directory (--data-dir or SCNS_DATA_DIR)"
        )
    data = spec.loader(None if root is None else Path(root).expanduser(), split, download)
    classes_ok = spec.num_classes is None or data.num_classes == spec.num_classes
    if not classes_ok or data.image_size != spec.image_size:
        raise ValueError(
            f"loader for '{name}' returned {data.num_classes} classes of {data.image_size}px images, "
            f"spec says {spec.num_classes} classes of {spec.image_size}px"
        )
    return data
