"""Agreement between sources: top-k overlap/Jaccard by hand, Spearman against scipy."""

from __future__ import annotations

import warnings

import pytest
import torch

from scns.similarity.agreement import (
    pairwise_agreement,
    topk_jaccard,
    topk_overlap,
    upper_spearman,
)


def _sym(values: list[list[float]]) -> torch.Tensor:
    t = torch.tensor(values)
    return (t + t.T) / 2


def test_overlap_and_jaccard_by_hand() -> None:
    a = torch.tensor([[0, 9, 8, 1], [9, 0, 7, 1], [8, 7, 0, 6], [1, 2, 6, 0]], dtype=torch.float32)
    b = torch.tensor([[0, 9, 1, 8], [9, 0, 7, 1], [1, 7, 0, 6], [8, 1, 6, 0]], dtype=torch.float32)
    # top-2 sets  a: {1,2} {0,2} {0,1} {2,1};  b: {1,3} {0,2} {1,3} {0,2}
    # intersections: 1, 2, 1, 1  -> overlap = mean(i/2) = 5/8; jaccard = mean(i / (4 - i)) = (1/3 + 1 + 1/3 + 1/3) / 4
    assert topk_overlap(a, b, 2) == pytest.approx(5 / 8)
    assert topk_jaccard(a, b, 2) == pytest.approx((1 / 3 + 1 + 1 / 3 + 1 / 3) / 4)
    assert topk_overlap(a, a, 3) == 1.0 and topk_jaccard(a, a, 3) == 1.0


def _loop_spearman(x: list[float], y: list[float]) -> float:
    """Reference: Pearson correlation of average ranks (ties share the mean of their positions),
    by plain loops (the hand-written ranks scns used before it called scipy)."""

    def ranks(v: list[float]) -> list[float]:
        return [sum(u < w for u in v) + (sum(u == w for u in v) - 1) / 2 for w in v]

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((p - mx) * (q - my) for p, q in zip(rx, ry))
    vx, vy = sum((p - mx) ** 2 for p in rx), sum((q - my) ** 2 for q in ry)
    return cov / (vx * vy) ** 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_upper_spearman_matches_scipy_with_ties(seed: int) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 3, (12, 12), generator=g).float()
    b = a + torch.randn(12, 12, generator=g)
    a, b = (a + a.T) / 2, (b + b.T) / 2
    i, j = torch.triu_indices(12, 12, offset=1)
    expected = scipy_stats.spearmanr(a[i, j].numpy(), b[i, j].numpy()).statistic
    assert upper_spearman(a, b) == pytest.approx(float(expected), abs=1e-9)
    assert upper_spearman(a, b) == pytest.approx(_loop_spearman(a[i, j].tolist(), b[i, j].tolist()), abs=1e-9)
    assert upper_spearman(a, a) == pytest.approx(1.0)
    assert upper_spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_of_a_constant_matrix_is_nan_and_pairs_are_listed() -> None:
    a = _sym([[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    const = torch.ones(3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN without scipy's ConstantInputWarning
        assert upper_spearman(a, const) != upper_spearman(a, const)  # NaN
    rows = pairwise_agreement({"x": a, "y": a, "z": const}, 1)
    assert [(r.a, r.b) for r in rows] == [("x", "y"), ("x", "z"), ("y", "z")]
    assert rows[0].overlap == 1.0 and rows[0].spearman == pytest.approx(1.0)


def test_ties_enter_with_their_shared_weight_and_order_does_not_matter() -> None:
    # row 0 of a: class 1 above, classes 2 and 3 tied for the last of k = 2 slots (0.5 each)
    a = _sym([[0, 9, 5, 5], [9, 0, 7, 1], [5, 7, 0, 6], [5, 1, 6, 0]])
    b = _sym([[0, 9, 8, 1], [9, 0, 7, 1], [8, 7, 0, 6], [1, 1, 6, 0]])
    # row 0: a {1: 1, 2: .5, 3: .5}, b {1, 2} -> |∩| = 1.5; row 1: both {0, 2} -> 2;
    # row 2: a {1, 3}, b {0, 1} -> 1; row 3: a {2, 0}, b {2: 1, 0: .5, 1: .5} -> 1.5
    assert topk_overlap(a, b, 2) == pytest.approx((1.5 + 2 + 1 + 1.5) / 8)
    assert topk_jaccard(a, b, 2) == pytest.approx((1.5 / 2.5 + 1 + 1 / 3 + 1.5 / 2.5) / 4)
    p = torch.tensor([3, 1, 0, 2])
    assert topk_overlap(a[p][:, p], b[p][:, p], 2) == pytest.approx(topk_overlap(a, b, 2))
