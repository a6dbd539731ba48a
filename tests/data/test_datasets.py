"""Dataset registry, ``load_dataset`` argument checks, ``ImageSet`` validation and the digits set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from scns.data import DATASETS, ImageSet, get_spec, list_datasets, load_dataset
from scns.data.datasets import VariantOption, parse_variant_options
from scns.data.digits import upsample_digits
from scns.data.errors import DatasetError
from scns.registry import UnknownNameError


def test_registry_lists_builtin_datasets() -> None:
    assert list_datasets() == DATASETS.names() == sorted(DATASETS.names())
    assert {"cifar10", "cifar100", "digits", "folder", "tiny_imagenet"} <= set(list_datasets())


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_spec_is_well_formed(name: str) -> None:
    """Swept over the registry: a new dataset is covered without editing this test."""
    spec = get_spec(name)
    assert spec.name == name and spec.image_size >= 8 and 0 <= spec.crop_padding < spec.image_size
    assert spec.num_classes is None or spec.num_classes >= 2  # None: counted from the data (folder)
    assert len(spec.mean) == len(spec.std) == 3
    assert all(0 < m < 1 for m in spec.mean) and all(0 < s < 1 for s in spec.std)
    assert spec.needs_data_dir or spec.archive is None  # a download needs a directory to land in


@pytest.mark.parametrize(
    ("name", "classes", "size", "pad", "needs_dir"),
    [
        ("cifar10", 10, 32, 4, True),
        ("cifar100", 100, 32, 4, True),
        ("tiny_imagenet", 200, 64, 8, True),
        ("digits", 10, 32, 4, False),
    ],
)
def test_spec_values(name: str, classes: int, size: int, pad: int, needs_dir: bool) -> None:
    spec = get_spec(name)
    assert (spec.name, spec.num_classes, spec.image_size, spec.crop_padding, spec.needs_data_dir) == (
        name,
        classes,
        size,
        pad,
        needs_dir,
    )
    assert len(spec.mean) == len(spec.std) == 3 and all(0 < s < 1 for s in spec.std)


def test_unknown_dataset_lists_choices() -> None:
    with pytest.raises(
        UnknownNameError, match="Did you mean 'cifar10'.*Valid choices: cifar10, cifar100, digits"
    ):
        load_dataset("cifar", "/nowhere", "train")


def test_bad_split_and_missing_root() -> None:
    with pytest.raises(ValueError, match="split must be one of train, test, got 'val'"):
        load_dataset("digits", None, "val")
    with pytest.raises(ValueError, match="--data-dir"):
        load_dataset("cifar10", None, "train")


# ---- ImageSet validation ----


def _set(**changes: object) -> ImageSet:
    fields: dict[str, object] = {
        "images": torch.zeros(4, 5, 5, 3, dtype=torch.uint8),
        "labels": torch.tensor([0, 1, 2, 1]),
        "classes": ["a", "b", "c"],
        "name": "toy",
        "split": "train",
    }
    fields.update(changes)
    return ImageSet(**fields)  # type: ignore[arg-type]


def test_imageset_accepts_valid_and_makes_contiguous() -> None:
    data = _set(images=torch.zeros(4, 3, 5, 5, dtype=torch.uint8).permute(0, 2, 3, 1))
    assert data.images.is_contiguous() and len(data) == 4 and data.num_classes == 3 and data.image_size == 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"images": np.zeros((4, 5, 5, 3), np.uint8)}, "must be a torch.Tensor"),
        ({"images": torch.zeros(4, 5, 5, 3)}, r"uint8 \[N, H, W, 3\]"),
        ({"images": torch.zeros(4, 3, 5, 5, dtype=torch.uint8)}, r"permute\(0, 2, 3, 1\)"),
        ({"labels": torch.tensor([0, 1, 2, 1], dtype=torch.int32)}, "int64"),
        ({"labels": torch.tensor([0, 1, 2])}, r"\[N=4\]"),
        ({"labels": torch.tensor([0, 1, 3, 1])}, r"\[0, 3\).*\[0, 3\]"),
        ({"labels": torch.tensor([0, -1, 2, 1])}, r"\[0, 3\)"),
        ({"classes": []}, "classes is empty"),
        ({"coarse_labels": torch.zeros(4, dtype=torch.int64)}, "given together"),
        (
            {"coarse_labels": torch.tensor([0, 0, 2, 0]), "coarse_classes": ["x", "y"]},
            r"coarse_labels must lie in \[0, 2\)",
        ),
        ({"wnids": ["n1"]}, "wnids has 1 entries"),
        ({"split": "dev"}, "split must be"),
    ],
)
def test_imageset_rejects(changes: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        _set(**changes)


# ---- digits ----


def _bilinear_reference(image: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centred bilinear resize with edge clamping (align_corners=False), by loops."""
    n = image.shape[0]
    out = np.zeros((size, size))
    scale = n / size
    for i in range(size):
        for j in range(size):
            y = max((i + 0.5) * scale - 0.5, 0.0)
            x = max((j + 0.5) * scale - 0.5, 0.0)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, n - 1), min(x0 + 1, n - 1)
            wy, wx = y - y0, x - x0
            top = image[y0, x0] * (1 - wx) + image[y0, x1] * wx
            bottom = image[y1, x0] * (1 - wx) + image[y1, x1] * wx
            out[i, j] = top * (1 - wy) + bottom * wy
    return out


def test_upsample_matches_bilinear_reference() -> None:
    from sklearn.datasets import load_digits

    pixels = load_digits().images[:3]
    out = upsample_digits(pixels)
    assert out.shape == (3, 32, 32, 3) and out.dtype == torch.uint8
    for k in range(3):
        ref = np.clip(np.round(_bilinear_reference(pixels[k] * 255 / 16, 32)), 0, 255)
        diff = np.abs(out[k, :, :, 0].numpy().astype(int) - ref.astype(int))
        assert diff.max() <= 1  # float32 vs float64 may round a .5 the other way
        assert (diff == 0).mean() > 0.99
        assert torch.equal(out[k, ..., 0], out[k, ..., 1]) and torch.equal(out[k, ..., 1], out[k, ..., 2])
    assert torch.equal(
        upsample_digits(np.full((1, 8, 8), 16.0)), torch.full((1, 32, 32, 3), 255, dtype=torch.uint8)
    )


def test_digits_split_is_fixed_stratified_and_disjoint(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    train, test = (
        load_dataset("digits", None, "train"),
        load_dataset("digits", tmp_path, "test"),
    )  # root ignored
    assert (len(train), len(test)) == (1437, 360)
    assert train.classes == [str(d) for d in range(10)]
    target = load_digits().target
    share = np.bincount(test.labels.numpy(), minlength=10) / np.bincount(target, minlength=10)
    assert np.all(np.abs(share - 360 / 1797) < 0.02)  # every class holds ~20% out
    # disjoint and covering: the 1,797 upsampled images (as byte strings) are split without overlap
    all_images = upsample_digits(load_digits().images)
    keys = {bytes(img.numpy().tobytes()) for img in all_images}
    both = [bytes(img.numpy().tobytes()) for img in torch.cat([train.images, test.images])]
    assert set(both) == keys
    again = load_dataset("digits", None, "train")
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


@pytest.mark.parametrize("name", ["digits", "digits:size=16", "digits:size=8"])
def test_digits_statistics_match_spec(name: str) -> None:
    x = load_dataset(name, None, "train").images.double() / 255
    spec = get_spec(name)
    np.testing.assert_allclose(x.mean((0, 1, 2)).numpy(), spec.mean, atol=1e-4)
    np.testing.assert_allclose(x.std((0, 1, 2)).numpy(), spec.std, atol=1e-4)


def test_digits_default_statistics_are_those_computed_at_32_px() -> None:
    from scns.data.digits import DEFAULT_PIXEL_STATS, pixel_stats

    assert pixel_stats(32) == DEFAULT_PIXEL_STATS


def test_digits_size_variant_upsamples_the_same_images_to_its_size() -> None:
    from sklearn.datasets import load_digits

    spec = get_spec("digits:size=16")
    assert (spec.image_size, spec.crop_padding, spec.hflip, spec.num_classes) == (16, 2, False, 10)
    small, full = load_dataset("digits:size=16", None, "test"), load_dataset("digits", None, "test")
    assert small.images.shape == (360, 16, 16, 3) and torch.equal(small.labels, full.labels)
    # each image is the 16 px bilinear resize of the 8x8 original that the 32 px set holds at 32
    pixels = load_digits().images
    originals = {bytes(upsample_digits(p[None]).numpy().tobytes()): p for p in pixels}
    for k in range(5):
        original = originals[bytes(full.images[k : k + 1].numpy().tobytes())]
        ref = np.clip(np.round(_bilinear_reference(original * 255 / 16, 16)), 0, 255)
        assert np.abs(small.images[k, :, :, 0].numpy().astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("digits:size=4", r"size=4 must be in \[8, 64\]"),
        ("digits:size=big", "the one option is size=PIXELS"),
        ("digits:colour=1", "the one option is size=PIXELS"),
    ],
)
def test_digits_variant_rejects_bad_options_naming_the_form(name: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        get_spec(name)


SIZE = VariantOption("PIXELS", int, 8, 64, example="16", unit="pixels")
FRACTION = VariantOption("FRACTION", float, 0, 1, example="0.2", exclusive=True)


def test_variant_options_parse_convert_and_leave_absent_keys_to_the_caller() -> None:
    both = {"size": SIZE, "val": FRACTION}
    assert parse_variant_options("folder", "size=96", {"size": replace(SIZE, high=1024)}) == {"size": 96}
    assert parse_variant_options("folder", " val = 0.25 , size=8,", both) == {"val": 0.25, "size": 8}
    assert parse_variant_options("folder", "", both) == {}
    assert parse_variant_options("folder", "size=64", both) == {"size": 64}  # a closed range holds its ends


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "size=big",
            r"option 'size=big' is not valid: use size=PIXELS and/or val=FRACTION, e.g. --dataset x:size=16,val=0.2",
        ),
        ("size=16.5", "option 'size=16.5' is not valid"),
        ("size", "option 'size' is not valid"),
        ("colour=1", "option 'colour=1' is not valid"),
        ("size=8,size=16", "option 'size' is given twice"),
        ("size=7", r"x dataset: size=7 must be in \[8, 64\] pixels"),
        ("size=65", r"size=65 must be in \[8, 64\] pixels"),
        ("val=1", r"val=1 must be in \(0, 1\)$"),  # an open range excludes its ends
        ("val=0", r"val=0 must be in \(0, 1\)$"),
        ("val=nan", r"val=nan must be in \(0, 1\)$"),
    ],
)
def test_variant_options_reject_bad_input_naming_the_form(text: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_variant_options("x", text, {"size": SIZE, "val": FRACTION})


def test_a_variant_with_one_option_says_it_is_the_one() -> None:
    with pytest.raises(DatasetError, match="the one option is size=PIXELS, e.g. --dataset x:size=16$"):
        parse_variant_options("x", "val=0.1", {"size": SIZE})
