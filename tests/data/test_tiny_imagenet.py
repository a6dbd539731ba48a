"""Tiny-ImageNet loader on a generated folder and on the real sample: labels, names, RGB conversion,
decode cache (hit, invalidation, corruption) and errors."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from scns.data import DatasetError, ImageSet, get_spec, load_dataset
from scns.data import tiny_imagenet as tiny


def load_fake(root: Path, split: str) -> ImageSet:
    """The registered loader itself: ``load_dataset`` would reject 3 classes where the spec says 200."""
    return get_spec("tiny_imagenet").loader(root, split, False)


def _pil_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_train_split_labels_names_and_pixels(fake_tiny: Any) -> None:
    data = load_fake(fake_tiny.root, "train")
    wnids = sorted(fake_tiny.wnids)
    assert data.wnids == wnids
    assert data.classes == ["goldfish", "maple tree", "sports car"]  # first gloss of words.txt
    expected_labels = [wnids.index(w) for w in wnids for _ in range(fake_tiny.train_counts[w])]
    assert data.labels.tolist() == expected_labels
    assert data.images.shape == (6, 64, 64, 3) and data.images.dtype == torch.uint8
    folder = fake_tiny.folder / "train"
    paths = [folder / w / "images" / f"{w}_{i}.JPEG" for w in wnids for i in range(fake_tiny.train_counts[w])]
    for row, path in enumerate(paths):
        np.testing.assert_array_equal(data.images[row].numpy(), _pil_rgb(path))


def test_grayscale_and_cmyk_become_rgb(fake_tiny: Any) -> None:
    data = load_fake(fake_tiny.root, "train")
    folder = fake_tiny.folder / "train" / "n0300" / "images"
    with Image.open(folder / "n0300_0.JPEG") as gray:
        assert gray.mode == "L"
        gray_pixels = np.asarray(gray)
    with Image.open(folder / "n0300_1.JPEG") as cmyk:
        assert cmyk.mode == "CMYK"
    sorted_wnids = sorted(fake_tiny.wnids)
    first = sum(fake_tiny.train_counts[w] for w in sorted_wnids[: sorted_wnids.index("n0300")])
    image = data.images[first].numpy()
    for ch in range(3):  # grayscale: every channel carries the gray value
        np.testing.assert_array_equal(image[..., ch], gray_pixels)
    assert data.images[first + 1].float().std() > 0


def test_test_split_is_the_annotated_val_folder(fake_tiny: Any) -> None:
    data = load_fake(fake_tiny.root, "test")
    wnids = sorted(fake_tiny.wnids)
    assert data.labels.tolist() == [wnids.index(w) for _, w in fake_tiny.val]
    val = fake_tiny.folder / "val" / "images"
    for row, (name, _) in enumerate(fake_tiny.val):
        np.testing.assert_array_equal(data.images[row].numpy(), _pil_rgb(val / name))


def test_root_may_be_the_dataset_folder_itself(fake_tiny: Any) -> None:
    data = load_fake(fake_tiny.folder, "test")
    assert len(data) == len(fake_tiny.val)


def test_second_load_comes_from_cache(fake_tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_fake(fake_tiny.root, "train")
    files = list((Path(os.environ["SCNS_CACHE_DIR"]) / "tiny_imagenet").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    monkeypatch.setattr(tiny, "_decode_image", lambda path: pytest.fail(f"decoded {path}"))
    second = load_fake(fake_tiny.root, "train")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def test_changed_file_invalidates_cache(fake_tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    load_fake(fake_tiny.root, "test")
    path = fake_tiny.folder / "val" / "images" / "val_2.JPEG"
    Image.fromarray(np.full((64, 64, 3), 7, dtype=np.uint8)).save(path, format="JPEG")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # mtime moves even on coarse clocks
    decoded: list[Path] = []
    real = tiny._decode_image
    monkeypatch.setattr(tiny, "_decode_image", lambda p: decoded.append(p) or real(p))
    data = load_fake(fake_tiny.root, "test")
    assert len(decoded) == len(fake_tiny.val)
    np.testing.assert_array_equal(data.images[2].numpy(), _pil_rgb(path))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_corrupt_cache_is_rebuilt(fake_tiny: Any, damage: str) -> None:
    first = load_fake(fake_tiny.root, "train")
    (cache,) = (Path(os.environ["SCNS_CACHE_DIR"]) / "tiny_imagenet").iterdir()
    if damage == "truncate":
        cache.write_bytes(cache.read_bytes()[:1000])
    elif damage == "garbage":
        cache.write_bytes(b"\0" * 5000)
    else:
        np.savez(cache, images=np.zeros((2, 64, 64, 3), np.uint8), labels=first.labels.numpy())
    with pytest.warns(UserWarning, match="corrupt Tiny-ImageNet cache"):
        again = load_fake(fake_tiny.root, "train")
    assert torch.equal(first.images, again.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt cache is valid: no warning the third time
        load_fake(fake_tiny.root, "train")


def test_missing_folder_mentions_layout_and_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("tiny_imagenet", tmp_path, "train")
    assert "tiny-imagenet-200" in str(err.value) and "val_annotations.txt" in str(err.value)
    assert "--download" in str(err.value)


def test_corrupt_jpeg_is_named(fake_tiny: Any) -> None:
    path = fake_tiny.folder / "train" / "n0100" / "images" / "n0100_1.JPEG"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=f"{path}.*not a readable image"):
        load_fake(fake_tiny.root, "train")


def test_non_jpeg_bytes_are_named(fake_tiny: Any) -> None:
    path = fake_tiny.folder / "val" / "images" / "val_0.JPEG"
    path.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="val_0.JPEG"):
        load_fake(fake_tiny.root, "test")


def test_wrong_image_size_is_named(fake_tiny: Any) -> None:
    path = fake_tiny.folder / "val" / "images" / "val_3.JPEG"
    Image.new("RGB", (32, 64)).save(path, format="JPEG")
    with pytest.raises(DatasetError, match=r"val_3.JPEG is 32x64, Tiny-ImageNet images are 64x64"):
        load_fake(fake_tiny.root, "test")


def test_annotation_with_unknown_wnid(fake_tiny: Any) -> None:
    path = fake_tiny.folder / "val" / "val_annotations.txt"
    path.write_text(path.read_text() + "val_9.JPEG\tn9999\t0\t0\t1\t1\n")
    with pytest.raises(DatasetError, match=r"val_annotations.txt:5"):
        load_fake(fake_tiny.root, "test")


def test_annotated_file_missing(fake_tiny: Any) -> None:
    (fake_tiny.folder / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(DatasetError, match="val_1.JPEG is missing"):
        load_fake(fake_tiny.root, "test")


def test_class_without_training_images(fake_tiny: Any) -> None:
    for path in (fake_tiny.folder / "train" / "n0200" / "images").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="no training images in .*n0200"):
        load_fake(fake_tiny.root, "train")


def test_class_without_name(fake_tiny: Any) -> None:
    (fake_tiny.folder / "words.txt").write_text("n0100\tgoldfish\n")
    with pytest.raises(DatasetError, match="words.txt has no name for"):
        load_fake(fake_tiny.root, "train")


# ---- the real Tiny-ImageNet sample (official files, 10 train + 10 val images per class) ----


def test_real_sample(tiny_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path))
    folder = tiny_sample / "tiny-imagenet-200"
    wnids = sorted((folder / "wnids.txt").read_text().split())
    train = load_dataset("tiny_imagenet", tiny_sample, "train")
    assert train.wnids == wnids and len(train.classes) == 200
    assert train.classes[wnids.index("n01443537")] == "goldfish"
    assert train.images.shape == (2000, 64, 64, 3)
    assert np.bincount(train.labels.numpy(), minlength=200).tolist() == [10] * 200
    # the sample contains grayscale JPEGs; each must be replicated over three channels
    gray = [p for p in sorted((folder / "train").glob("*/images/*.JPEG")) if Image.open(p).mode == "L"]
    assert gray, "the real sample is expected to contain grayscale images"
    paths = sorted((folder / "train").glob("*/images/*.JPEG"), key=lambda p: (p.parts[-3], p.name))
    row = paths.index(gray[0])
    image = train.images[row]
    assert torch.equal(image[..., 0], image[..., 1]) and torch.equal(image[..., 1], image[..., 2])
    np.testing.assert_array_equal(image[..., 0].numpy(), np.asarray(Image.open(gray[0])))
    # the spec's statistics were computed from exactly these images
    x = train.images.double() / 255
    spec = get_spec("tiny_imagenet")
    np.testing.assert_allclose(x.mean((0, 1, 2)).numpy(), spec.mean, atol=1e-3)
    np.testing.assert_allclose(x.std((0, 1, 2)).numpy(), spec.std, atol=1e-3)

    test = load_dataset("tiny_imagenet", tiny_sample, "test")
    assert len(test) == 2000
    annotations = [
        line.split("\t") for line in (folder / "val" / "val_annotations.txt").read_text().splitlines()
    ]
    assert test.labels.tolist() == [wnids.index(a[1]) for a in annotations]

    monkeypatch.setattr(tiny, "_decode_image", lambda path: pytest.fail(f"decoded {path}"))
    again = load_dataset("tiny_imagenet", tiny_sample, "train")
    assert torch.equal(again.images, train.images)


def test_real_full_tiny_imagenet(data_dir: Path) -> None:
    """The complete release under SCNS_DATA_DIR, when it is there."""
    if tiny.locate(data_dir) is None:
        pytest.skip(f"no tiny-imagenet-200/ under {data_dir}")
    train = load_dataset("tiny_imagenet", data_dir, "train")
    test = load_dataset("tiny_imagenet", data_dir, "test")
    assert train.num_classes == 200 and len(train) == 100_000 and len(test) == 10_000
    assert np.bincount(train.labels.numpy(), minlength=200).tolist() == [500] * 200
