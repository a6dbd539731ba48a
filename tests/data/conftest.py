"""Generated miniature datasets in the official file layouts."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TINY_SAMPLE = REPO / ".." / "shared" / "data" / "tiny-imagenet-200-sample"


def _dump(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@dataclass
class FakeCifar:
    """What was written: raw rows [N, 3072] and labels per split."""

    folder: Path
    data: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    coarse: dict[str, np.ndarray] | None
    classes: list[str]
    coarse_classes: list[str] | None


def write_cifar(root: Path, variant: str, n_per_file: int = 6, seed: int = 0) -> FakeCifar:
    """Write ``cifar-10-batches-py/`` (5 train batches + test) or ``cifar-100-python/`` under root."""
    rng = np.random.default_rng(seed)
    if variant == "cifar10":
        folder, files, num = (
            root / "cifar-10-batches-py",
            {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
            10,
        )
    else:
        folder, files, num = root / "cifar-100-python", {"train": ["train"], "test": ["test"]}, 100
    folder.mkdir(parents=True)
    out = FakeCifar(
        folder, {}, {}, {} if variant == "cifar100" else None, [f"class_{i}" for i in range(num)], None
    )
    for split, names in files.items():
        datas, labs, coarses = [], [], []
        for name in names:
            data = rng.integers(0, 256, size=(n_per_file, 3072), dtype=np.uint8)
            labels = rng.integers(0, num, size=n_per_file)
            obj: dict[bytes, object] = {b"batch_label": name.encode(), b"data": data}
            if variant == "cifar10":
                obj[b"labels"] = labels.tolist()
            else:
                coarse = labels // 5
                obj[b"fine_labels"] = labels.tolist()
                obj[b"coarse_labels"] = coarse.tolist()
                coarses.append(coarse)
            _dump(folder / name, obj)
            datas.append(data)
            labs.append(labels)
        out.data[split] = np.concatenate(datas)
        out.labels[split] = np.concatenate(labs)
        if out.coarse is not None:
            out.coarse[split] = np.concatenate(coarses)
    if variant == "cifar10":
        _dump(folder / "batches.meta", {b"label_names": [c.encode() for c in out.classes], b"num_vis": 3072})
    else:
        out.coarse_classes = [f"super_{i}" for i in range(20)]
        _dump(
            folder / "meta",
            {
                b"fine_label_names": [c.encode() for c in out.classes],
                b"coarse_label_names": [c.encode() for c in out.coarse_classes],
            },
        )
    return out


@pytest.fixture
def cifar_writer() -> Callable[..., FakeCifar]:
    """``write_cifar`` for tests that build their own layout (e.g. to pack into an archive)."""
    return write_cifar


@pytest.fixture
def tiny_writer() -> Callable[..., Path]:
    """``write_tiny_imagenet`` for tests that build their own layout."""
    return write_tiny_imagenet


@pytest.fixture
def fake_cifar10(tmp_path: Path) -> FakeCifar:
    return write_cifar(tmp_path / "data", "cifar10")


@pytest.fixture
def fake_cifar100(tmp_path: Path) -> FakeCifar:
    return write_cifar(tmp_path / "data", "cifar100")


# wnids.txt order is deliberately not sorted; the loader sorts.
TINY_WNIDS = ["n0300", "n0100", "n0200"]
TINY_TRAIN_COUNTS = {"n0300": 2, "n0100": 3, "n0200": 1}
TINY_VAL = [
    ("val_0.JPEG", "n0200"),
    ("val_1.JPEG", "n0300"),
    ("val_2.JPEG", "n0100"),
    ("val_3.JPEG", "n0200"),
]


def _save_jpeg(path: Path, rng: np.random.Generator, mode: str) -> None:
    rgb = Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    image = {"RGB": rgb, "L": rgb.convert("L"), "CMYK": rgb.convert("CMYK")}[mode]
    image.save(path, format="JPEG", quality=90)


def write_tiny_imagenet(root: Path, seed: int = 0) -> Path:
    """A 3-class ``tiny-imagenet-200/`` under root with one grayscale and one CMYK JPEG."""
    rng = np.random.default_rng(seed)
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "test" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (folder / "words.txt").write_text(
        "n0050\tunused, not listed\n"
        "n0100\tgoldfish, Carassius auratus\n"
        "n0200\tmaple tree\n"
        "n0300\tsports car, sport car\n"
    )
    modes = iter(["L", "CMYK"] + ["RGB"] * 100)
    for wnid, count in TINY_TRAIN_COUNTS.items():
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(count):
            _save_jpeg(images / f"{wnid}_{i}.JPEG", rng, next(modes))
    lines = []
    for name, wnid in TINY_VAL:
        _save_jpeg(folder / "val" / "images" / name, rng, "RGB")
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


@dataclass
class FakeTiny:
    """A generated Tiny-ImageNet root and what it holds."""

    root: Path
    wnids: list[str]  # wnids.txt order
    train_counts: dict[str, int]
    val: list[tuple[str, str]]  # (file, wnid) in annotation order

    @property
    def folder(self) -> Path:
        return self.root / "tiny-imagenet-200"


@pytest.fixture
def fake_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTiny:
    """A generated tiny-imagenet-200/ under tmp_path/data; the decode cache goes to tmp_path/cache."""
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    write_tiny_imagenet(root)
    return FakeTiny(root, list(TINY_WNIDS), dict(TINY_TRAIN_COUNTS), list(TINY_VAL))


@pytest.fixture
def tiny_sample() -> Path:
    """Root of the real Tiny-ImageNet sample (../shared/data next to the repo); skips when absent."""
    if not TINY_SAMPLE.is_dir():
        pytest.skip(f"no real Tiny-ImageNet sample at {TINY_SAMPLE}")
    return TINY_SAMPLE
