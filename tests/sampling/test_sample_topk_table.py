"""SampleTopK's kNN table: brute force, chunk invariance, faiss agreement, lifecycle."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scns.sampling import SampleTopKSampler, knn_other_class
from scns.sampling.sample_topk import default_nlist, knn_other_class_faiss


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


needs_faiss = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss not installed (pip install faiss-cpu)"
)


def _clustered(
    n: int, classes: int, dim: int, noise: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors around one random centre per class: [n, dim] features, [n] labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    centres = F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    return F.normalize(centres[labels] + noise * torch.randn(n, dim, generator=g), dim=1), labels


@needs_faiss
def test_faiss_flat_equals_brute_force_on_clustered_data() -> None:
    feats, labels = _clustered(600, 7, 12, noise=0.3)
    table = knn_other_class_faiss(feats, labels, 40)
    assert table.dtype == torch.int32
    np.testing.assert_array_equal(table.numpy(), _brute_force(feats.double().numpy(), labels.numpy(), 40))


@needs_faiss
def test_ivf_scanning_every_cell_is_exact() -> None:
    feats, labels = _clustered(800, 9, 16, noise=0.5)
    exact = knn_other_class(feats, labels, 30)
    ivf = knn_other_class_faiss(feats, labels, 30, index="ivf", nlist=8, nprobe=8)
    assert (ivf.long() == exact).float().mean() > 0.999  # equal up to float ties


@needs_faiss
def test_ivf_with_one_probed_cell_still_fills_every_row_with_other_class_ids() -> None:
    # tight classes: each k-means cell holds mostly one class, so scanning one cell finds too few
    # other-class rows and the search must widen until each row has top_k of them
    feats, labels = _clustered(900, 6, 8, noise=0.05)
    table = knn_other_class_faiss(feats, labels, 50, index="ivf", nlist=6, nprobe=1).long()
    assert (table >= 0).all() and (table < 900).all()
    assert not (labels[table] == labels[:, None]).any()
    assert all(len(set(row)) == 50 for row in table.tolist())  # no repeated neighbour in a row
    exact = knn_other_class(feats, labels, 50)
    exact_sims = (feats[:, None, :] * feats[exact]).sum(-1).mean()
    ivf_sims = (feats[:, None, :] * feats[table]).sum(-1).mean()
    sims = feats @ feats.T
    other = labels[:, None] != labels[None, :]
    uniform_sims = sims[other].mean()  # what uniform other-class negatives would score
    # approximate: never harder than exact, but far harder than uniform negatives
    assert exact_sims + 1e-6 >= ivf_sims > uniform_sims + 0.5 * (exact_sims - uniform_sims)


@needs_faiss
def test_sampler_ivf_option_and_default_cell_count() -> None:
    feats, labels = _clustered(500, 5, 8, noise=0.3)
    sampler = SampleTopKSampler(labels, top_k=20, backend="faiss", index="ivf", nlist=4, nprobe=4)
    sampler.refresh(feats)
    np.testing.assert_array_equal(
        sampler.table.numpy(), knn_other_class_faiss(feats, labels, 20, "ivf", 4, 4)
    )
    assert "faiss ivf" in sampler.describe()
    assert default_nlist(1_281_167) == 4096 and default_nlist(50_000) == 1024 and default_nlist(1) == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"index": "hnsw"}, "index must be 'flat' or 'ivf'"),
        ({"nprobe": 0}, "nprobe must be >= 1"),
        ({"nlist": 0}, "nlist"),
    ],
)
def test_sampler_rejects_bad_faiss_options(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        SampleTopKSampler(torch.arange(10) % 2, top_k=2, backend="faiss", **kwargs)
