"""Real CIFAR files under SCNS_DATA_DIR (the official layout): counts, statistics, coarse labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scns.data import get_spec, load_dataset

pytestmark = pytest.mark.realdata


def _channel_stats(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 [N, H, W, 3] on the [0, 1] scale, from exact value histograms."""
    values = np.arange(256, dtype=np.float64) / 255
    means, stds = [], []
    for c in range(3):
        p = torch.bincount(images[..., c].flatten(), minlength=256).double().numpy()
        p /= p.sum()
        mean = float(p @ values)
        means.append(mean)
        stds.append(float(np.sqrt(p @ (values - mean) ** 2)))
    return np.array(means), np.array(stds)


def test_cifar10(data_dir: Path) -> None:
    train = load_dataset("cifar10", data_dir, "train")
    test = load_dataset("cifar10", data_dir, "test")
    assert (len(train), len(test)) == (50_000, 10_000)
    assert np.bincount(train.labels.numpy()).tolist() == [5000] * 10
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10
    assert train.classes[:3] == ["airplane", "automobile", "bird"]
    mean, std = _channel_stats(train.images)
    spec = get_spec("cifar10")
    np.testing.assert_allclose(mean, spec.mean, atol=1e-3)
    np.testing.assert_allclose(std, spec.std, atol=1e-3)


def test_cifar100(data_dir: Path) -> None:
    train = load_dataset("cifar100", data_dir, "train")
    test = load_dataset("cifar100", data_dir, "test")
    assert (len(train), len(test)) == (50_000, 10_000)
    assert np.bincount(train.labels.numpy()).tolist() == [500] * 100
    assert "maple_tree" in train.classes and train.coarse_classes is not None
    assert len(train.coarse_classes) == 20
    mean, std = _channel_stats(train.images)
    spec = get_spec("cifar100")
    np.testing.assert_allclose(mean, spec.mean, atol=1e-3)
    np.testing.assert_allclose(std, spec.std, atol=1e-3)
    for split in (train, test):
        assert split.coarse_labels is not None
        # each fine class belongs to exactly one superclass, and each superclass has 5 fine classes
        pairs = torch.unique(split.labels * 20 + split.coarse_labels)
        fine_to_coarse = dict(zip((pairs // 20).tolist(), (pairs % 20).tolist(), strict=True))
        assert len(fine_to_coarse) == 100 and len(pairs) == 100
        assert np.bincount(list(fine_to_coarse.values())).tolist() == [5] * 20
    coarse_of = {train.classes[f]: train.coarse_classes[c] for f, c in fine_to_coarse.items()}
    assert coarse_of["maple_tree"] == "trees" and coarse_of["dolphin"] == "aquatic_mammals"
