"""SampleTopK's kNN table: brute force, chunk invariance, faiss agreement, lifecycle."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scns.sampling import SampleTopKSampler, knn_other_class


def _brute_force(features: np.ndarray, labels: np.ndarray, top_k: int) -> np.ndarray:
    """Full N x N cosine matrix, same class excluded, sorted by a stable NumPy argsort."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = f @ f.T
    sims[labels[:, None] == labels[None, :]] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :top_k]


@pytest.fixture
def small_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (257,), generator=g)
    return torch.randn(257, 16, generator=g, dtype=torch.float64), labels


def test_table_equals_brute_force(small_data) -> None:
    feats, labels = small_data
    sampler = SampleTopKSampler(labels, top_k=25, chunk_size=64)
    sampler.refresh(feats)
    assert sampler.table.shape == (257, 25) and sampler.table.dtype == torch.int32
    np.testing.assert_array_equal(sampler.table.numpy(), _brute_force(feats.numpy(), labels.numpy(), 25))


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 257, 1000])
def test_chunk_size_does_not_change_the_table(small_data, chunk_size: int) -> None:
    feats, labels = small_data
    feats = F.normalize(feats, dim=1)
    reference = knn_other_class(feats, labels, 25, chunk_size=257)
    assert torch.equal(knn_other_class(feats, labels, 25, chunk_size=chunk_size), reference)


@pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss not installed (pip install faiss-cpu)"
)
def test_faiss_backend_equals_torch_backend(small_data) -> None:
    feats, labels = small_data
    feats = feats.float()
    a = SampleTopKSampler(labels, top_k=25, backend="torch")
    b = SampleTopKSampler(labels, top_k=25, backend="faiss")
    a.refresh(feats)
    b.refresh(feats)
    assert torch.equal(a.table, b.table)


def test_faiss_missing_gives_install_hint(small_data, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    feats, labels = small_data
    sampler = SampleTopKSampler(labels, top_k=5, backend="faiss")
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        sampler.refresh(feats)


def test_sample_before_refresh_is_a_clear_error(small_data) -> None:
    _, labels = small_data
    sampler = SampleTopKSampler(labels, top_k=5)
    with pytest.raises(RuntimeError, match=r"call refresh\(features"):
        sampler.sample(torch.tensor([0]), labels[:1], 3)
    assert sampler.should_refresh(5) and sampler.state_dict() == {}


def test_refresh_schedule(small_data) -> None:
    feats, labels = small_data
    sampler = SampleTopKSampler(labels, top_k=5, refresh_every=3)
    sampler.refresh(feats)
    assert [sampler.should_refresh(e) for e in range(7)] == [True, False, False, True, False, False, True]


def test_argument_errors(small_data) -> None:
    feats, labels = small_data
    max_top_k = 257 - int(torch.bincount(labels).max())
    with pytest.raises(ValueError, match=rf"top_k must be in \[1, {max_top_k}\]"):
        SampleTopKSampler(labels, top_k=max_top_k + 1)
    with pytest.raises(ValueError, match="backend"):
        SampleTopKSampler(labels, top_k=5, backend="annoy")
    with pytest.raises(ValueError, match="refresh_every"):
        SampleTopKSampler(labels, top_k=5, refresh_every=0)
    sampler = SampleTopKSampler(labels, top_k=5)
    with pytest.raises(ValueError, match=r"features must be \[N=257, D\]"):
        sampler.refresh(feats[:10])
    with pytest.raises(ValueError, match="does not match"):
        sampler.load_state_dict({"table": torch.zeros(257, 6, dtype=torch.int32)})


def test_refresh_follows_new_features(small_data) -> None:
    feats, labels = small_data
    sampler = SampleTopKSampler(labels, top_k=10)
    sampler.refresh(feats)
    first = sampler.table.clone()
    sampler.refresh(torch.randn_like(feats))
    assert not torch.equal(first, sampler.table)


@pytest.mark.parametrize(
    "n, k, masked", [(1000, 20, 0), (1000, 20, 300), (5000, 100, 1200), (60, 20, 0), (300, 20, 250)]
)
def test_topk_indices_matches_torch_topk(n: int, k: int, masked: int) -> None:
    """The pre-filtered top-k equals a plain top-k (float64, no ties), including rows with a
    masked (-inf) block and the fallbacks (narrow rows; too few finite blocks)."""
    from scns.sampling.sample_topk import topk_indices

    g = torch.Generator().manual_seed(n + k + masked)
    values = torch.randn(37, n, generator=g, dtype=torch.float64)
    for r in range(37):
        start = (r * 97) % max(1, n - masked)
        values[r, start : start + masked] = float("-inf")
    assert torch.equal(topk_indices(values, k), values.topk(k, dim=1).indices)
