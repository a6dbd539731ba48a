"""Dataset specs (sizes, normalisation, loader) in a registry, and ``load_dataset``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scns.data.download import Archive
from scns.data.errors import DatasetError
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


@dataclass(frozen=True)
class VariantOption:
    """One ``KEY=VALUE`` option of a dataset variant (the ``size=96`` of ``folder:size=96``).

    Attributes:
        metavar: the value's name in messages (``PIXELS``).
        convert: reads the value (``int``, ``float``); a ``ValueError`` means it is malformed.
        low, high: the allowed range of the value.
        example: a valid value, for the example in messages.
        exclusive: the range is open, (low, high); otherwise closed, [low, high].
        unit: what follows the range in messages (``pixels``).
    """

    metavar: str
    convert: Callable[[str], int | float]
    low: float
    high: float
    example: str
    exclusive: bool = False
    unit: str = ""

    def admits(self, value: float) -> bool:
        """Whether ``value`` lies in the range (False for NaN)."""
        return self.low < value < self.high if self.exclusive else self.low <= value <= self.high

    def range_text(self) -> str:
        """``[8, 64] pixels`` or ``(0, 1)``."""
        ends = "()" if self.exclusive else "[]"
        text = f"{ends[0]}{self.low:g}, {self.high:g}{ends[1]}"
        return f"{text} {self.unit}" if self.unit else text


def parse_variant_options(
    dataset: str, text: str, options: Mapping[str, VariantOption]
) -> dict[str, int | float]:
    """The ``KEY=VALUE,...`` options of ``dataset:TEXT``, converted and range-checked.

    ``parse_variant_options("folder", "size=96,val=0.2", ...)`` -> ``{"size": 96, "val": 0.2}``; an
    option not given is absent from the result (the caller's default applies). An unknown key, a
    malformed value, a key given twice or a value out of range is a ``DatasetError`` that names the
    valid form.
    """
    form = " and/or ".join(f"{key}={option.metavar}" for key, option in options.items())
    usage = f"the one option is {form}" if len(options) == 1 else f"use {form}"
    example = ",".join(f"{key}={option.example}" for key, option in options.items())
    values: dict[str, int | float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = (s.strip() for s in part.partition("="))
        option = options.get(key)
        try:
            if option is None or not sep:
                raise ValueError
            value = option.convert(raw)
        except ValueError:
            raise DatasetError(
                f"{dataset} dataset option '{part}' is not valid: {usage}, e.g. --dataset {dataset}:{example}"
            ) from None
        if key in values:
            raise DatasetError(f"{dataset} dataset option '{key}' is given twice in '{text}'; give it once")
        if not option.admits(value):
            raise DatasetError(f"{dataset} dataset: {key}={raw} must be in {option.range_text()}")
        values[key] = value
    return values


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
