"""SampleTopK's draws: without replacement, evenly spread beyond the row, skip_nearest, log_prob,
refresh inputs, and the duplicate rate, each against a loop reference or a fixed-seed
distribution test (p-value floor P_VALUE_FLOOR from conftest: a correct sampler fails a test with
probability about 1e-3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scns.sampling import SampleTopKSampler, UniformSampler
from scns.sampling.sample_topk import skipped_columns, spread_columns
from scns.sampling.stats import duplicate_rate

TOP_K = 30
P_VALUE_FLOOR = 1e-3  # as in conftest: a correct sampler fails one test with probability 1e-3


@pytest.fixture
def sampler(unequal_labels: torch.Tensor) -> SampleTopKSampler:
    s = SampleTopKSampler(unequal_labels, top_k=TOP_K)
    s.refresh(torch.randn(300, 8, generator=torch.Generator().manual_seed(3)))
    return s


def _chi2_p(statistic: float, dof: int) -> float:
    return torch.special.gammaincc(
        torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(statistic / 2, dtype=torch.float64)
    ).item()


def assert_uniform_subsets(chosen: np.ndarray, length: int, size: int) -> None:
    """chosen: bool [B, length], each row a subset of ``size`` entries claimed uniformly random.

    Inclusion counts c_i over B independent rows have mean B p (p = size / length) and the
    covariance of a multinomial scaled by ``(1 - p) L / (L - 1)``, so
    ``sum (c_i - B p)^2 / (B p (1 - p) L / (L - 1))`` is chi-square with L - 1 dof.
    """
    assert (chosen.sum(1) == size).all()
    b, p = chosen.shape[0], size / length
    counts = chosen.sum(0)
    statistic = float(((counts - b * p) ** 2).sum() / (b * p * (1 - p) * length / (length - 1)))
    p_value = _chi2_p(statistic, length - 1)
    assert p_value > P_VALUE_FLOOR, f"inclusion chi-square p-value {p_value:.2e}"


def _draw_one_anchor(
    sampler: SampleTopKSampler, labels: torch.Tensor, anchor: int, rows: int, k: int, seed: int
):
    index = torch.full((rows,), anchor)
    return sampler.sample(index, labels[index], k, torch.Generator().manual_seed(seed))


def _column_positions(ids: torch.Tensor, row: torch.Tensor) -> np.ndarray:
    """Position in ``row`` [L] (distinct ids) of every id in ids [B, k]."""
    lookup = {int(v): j for j, v in enumerate(row.tolist())}
    return np.vectorize(lookup.__getitem__)(ids.numpy())


def test_k_within_the_row_draws_distinct_uniform_subsets(sampler, unequal_labels, assert_fits) -> None:
    anchor, k = 17, 12
    ids = _draw_one_anchor(sampler, unequal_labels, anchor, 4000, k, seed=0)
    row = sampler.table[anchor].long()
    pos = _column_positions(ids, row)  # raises KeyError for an id outside the row
    assert all(len(set(r)) == k for r in pos.tolist()), "a duplicate within one anchor's draws"
    chosen = np.zeros((ids.shape[0], TOP_K), dtype=bool)
    np.put_along_axis(chosen, pos, True, axis=1)
    assert_uniform_subsets(chosen, TOP_K, k)
    probs = np.zeros(300)
    probs[row.numpy()] = 1 / TOP_K
    for col in (0, k - 1):  # positions are independent across rows: each is exactly uniform
        assert_fits(ids[:, col], probs)


def test_k_beyond_the_row_repeats_each_entry_floor_or_ceil_times(
    sampler, unequal_labels, assert_fits
) -> None:
    anchor, k = 40, 2 * TOP_K + 11
    ids = _draw_one_anchor(sampler, unequal_labels, anchor, 4000, k, seed=1)
    row = sampler.table[anchor].long()
    pos = _column_positions(ids, row)
    counts = np.stack([np.bincount(r, minlength=TOP_K) for r in pos])  # [B, L], exact per anchor
    assert set(np.unique(counts)) == {2, 3} and (counts.sum(1) == k).all()
    assert_uniform_subsets(counts == 3, TOP_K, 11)  # which entries get the extra draw
    probs = np.zeros(300)
    probs[row.numpy()] = 1 / TOP_K
    for col in (0, k - 1):  # shuffled into random positions: each position uniform over the row
        assert_fits(ids[:, col], probs)


@pytest.mark.parametrize("k", [1, 29, 30, 31, 90])
def test_duplicate_rate_of_draws_is_exact(sampler, unequal_labels, k: int) -> None:
    index = torch.arange(0, 300, 3)
    ids = sampler.sample(index, unequal_labels[index], k, torch.Generator().manual_seed(k))
    distinct = min(k, TOP_K)
    assert all(len(set(r)) == distinct for r in ids.tolist())
    assert duplicate_rate(ids).item() == pytest.approx(1 - distinct / k, abs=1e-6)


def test_with_replacement_keeps_the_old_iid_draws(unequal_labels, assert_fits) -> None:
    s = SampleTopKSampler(unequal_labels, top_k=TOP_K, with_replacement=True)
    s.refresh(torch.randn(300, 8, generator=torch.Generator().manual_seed(3)))
    anchor, k = 17, 25
    ids = _draw_one_anchor(s, unequal_labels, anchor, 400, k, seed=2)
    probs = np.zeros(300)
    probs[s.table[anchor].long().numpy()] = 1 / TOP_K
    assert_fits(ids, probs)  # i.i.d.: a multinomial, so the plain chi-square applies
    # expected distinct ids per anchor: L (1 - (1 - 1/L)^k); 400 anchors, tolerance 5 standard errors
    expected = 1 - TOP_K * (1 - (1 - 1 / TOP_K) ** k) / k
    distinct = torch.tensor([len(set(r)) for r in ids.tolist()], dtype=torch.float64)
    tolerance = 5 * distinct.std().item() / math.sqrt(400) / k
    assert duplicate_rate(ids).item() == pytest.approx(expected, abs=tolerance)
    assert "with replacement" in s.describe()


def test_skip_nearest_draws_only_from_the_far_columns(unequal_labels) -> None:
    s = SampleTopKSampler(unequal_labels, top_k=TOP_K, skip_nearest=0.2)
    s.refresh(torch.randn(300, 8, generator=torch.Generator().manual_seed(3)))
    assert (s.skip, s.usable) == (6, 24) and s.table.shape == (300, TOP_K)
    index = torch.arange(300)
    ids = s.sample(index, unequal_labels, 24, torch.Generator().manual_seed(0))
    for i in range(300):
        assert sorted(ids[i].tolist()) == sorted(s.table[i, 6:].tolist())  # the whole usable row, once
    assert "skip nearest 6" in s.describe()


@pytest.mark.parametrize(
    "skip, top_k, expected", [(0.0, 10, 0), (0.3, 10, 3), (0.25, 10, 3), (0.01, 10, 1), (0.9, 10, 9)]
)
def test_skipped_columns_is_the_ceiling(skip: float, top_k: int, expected: int) -> None:
    assert skipped_columns(skip, top_k) == expected


@pytest.mark.parametrize(
    "skip, top_k, match",
    [
        (1.0, 10, r"\[0, 1\)"),
        (-0.1, 10, r"\[0, 1\)"),
        (0.5, 1, "skips all 1 neighbours"),
        (0.95, 10, "skips all"),
    ],
)
def test_skip_nearest_errors(unequal_labels, skip: float, top_k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SampleTopKSampler(unequal_labels, top_k=top_k, skip_nearest=skip)


def _log_prob_reference(table: torch.Tensor, skip: int, index, neg_idx) -> np.ndarray:
    out = np.empty(neg_idx.shape, dtype=np.float32)
    for b, i in enumerate(index.tolist()):
        row = set(table[i, skip:].tolist())
        for j, v in enumerate(neg_idx[b].tolist()):
            out[b, j] = -math.log(len(row)) if v in row else -math.inf
    return out


@pytest.mark.parametrize("skip_nearest", [0.0, 0.5])
def test_log_prob_matches_a_loop_reference(unequal_labels, skip_nearest: float) -> None:
    s = SampleTopKSampler(unequal_labels, top_k=TOP_K, skip_nearest=skip_nearest)
    s.refresh(torch.randn(300, 8, generator=torch.Generator().manual_seed(5)))
    g = torch.Generator().manual_seed(6)
    index = torch.randint(0, 300, (50,), generator=g)
    # ids from this sampler, from the skipped columns, from a uniform sampler, plus edge ids
    own = s.sample(index, unequal_labels[index], 20, g)
    skipped = s.table[index, : max(s.skip, 1)].long()
    other = UniformSampler(unequal_labels).sample(index, unequal_labels[index], 40, g)
    edge = torch.tensor([0, 299, -1, 300, 2**40]).expand(50, -1)
    neg_idx = torch.cat([own, skipped, other, edge], dim=1)
    got = s.log_prob(index, unequal_labels[index], neg_idx)
    assert got.dtype == torch.float32 and got.shape == neg_idx.shape
    np.testing.assert_array_equal(got.numpy(), _log_prob_reference(s.table, s.skip, index, neg_idx))
    assert bool((got[:, :20] == -math.log(s.usable)).all())  # what it drew is always in its row


def test_log_prob_errors(sampler, unequal_labels) -> None:
    fresh = SampleTopKSampler(unequal_labels, top_k=5)
    with pytest.raises(RuntimeError, match="refresh"):
        fresh.log_prob(torch.tensor([0]), unequal_labels[:1], torch.tensor([[1]]))
    with pytest.raises(ValueError, match=r"neg_idx \[B, K\]"):
        sampler.log_prob(torch.tensor([0, 1]), unequal_labels[:2], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="integer"):
        sampler.log_prob(torch.tensor([0]), unequal_labels[:1], torch.tensor([[1.0]]))


def test_state_dict_round_trip_keeps_draws_and_log_prob(unequal_labels) -> None:
    a = SampleTopKSampler(unequal_labels, top_k=TOP_K, skip_nearest=0.1)
    a.refresh(torch.randn(300, 8, generator=torch.Generator().manual_seed(7)))
    b = SampleTopKSampler(unequal_labels, top_k=TOP_K, skip_nearest=0.1)
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"table"}  # the sorted copy is rebuilt, not stored
    index = torch.arange(0, 300, 7)
    draws = [s.sample(index, unequal_labels[index], 50, torch.Generator().manual_seed(1)) for s in (a, b)]
    assert torch.equal(*draws)
    ids = torch.randint(0, 300, (index.numel(), 64), generator=torch.Generator().manual_seed(2))
    assert torch.equal(
        a.log_prob(index, unequal_labels[index], ids), b.log_prob(index, unequal_labels[index], ids)
    )
    b.load_state_dict({})
    assert b.table is None and b.should_refresh(3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_refresh_from_a_half_precision_bank_ranks_in_float32(unequal_labels, dtype) -> None:
    feats = torch.nn.functional.normalize(
        torch.randn(300, 16, generator=torch.Generator().manual_seed(8)), dim=1
    )
    low = feats.to(dtype)
    a, b = SampleTopKSampler(unequal_labels, top_k=TOP_K), SampleTopKSampler(unequal_labels, top_k=TOP_K)
    a.refresh(low)
    b.refresh(low.float())
    assert torch.equal(a.table, b.table)


@pytest.mark.parametrize("bad", ["zero", "nan", "inf"])
def test_refresh_rejects_rows_that_cannot_be_ranked(unequal_labels, bad: str) -> None:
    feats = torch.randn(300, 8, generator=torch.Generator().manual_seed(9))
    feats[[4, 100]] = {"zero": 0.0, "nan": float("nan"), "inf": float("inf")}[bad]
    s = SampleTopKSampler(unequal_labels, top_k=5)
    with pytest.raises(ValueError, match=r"first rows \[4, 100\]") as err:
        s.refresh(feats.to(torch.bfloat16))
    assert "filled bank" in str(err.value)
    assert s.table is None


def test_refresh_rejects_integer_features(unequal_labels) -> None:
    with pytest.raises(ValueError, match="float"):
        SampleTopKSampler(unequal_labels, top_k=5).refresh(torch.ones(300, 4, dtype=torch.long))


def test_spread_columns_shapes_and_counts() -> None:
    g = torch.Generator().manual_seed(0)
    cols = spread_columns(64, 7, 7, g)
    assert torch.equal(cols.sort(1).values, torch.arange(7).expand(64, -1))  # k = L: a permutation
    cols = spread_columns(64, 7, 23, g)
    counts = torch.stack([torch.bincount(r, minlength=7) for r in cols])
    assert set(counts.unique().tolist()) == {3, 4} and bool((counts.sum(1) == 23).all())
    windows = cols.unfold(1, 7, 1)  # [64, 17, 7]: every 7 consecutive positions
    assert bool((windows.sort(2).values == torch.arange(7)).all()), "a prefix is not spread evenly"


def _duplicate_rate_loop(ids: torch.Tensor) -> float:
    rows = ids.tolist()
    return 1 - sum(len(set(r)) / len(r) for r in rows) / len(rows)


@pytest.mark.parametrize("shape, high", [((1, 1), 3), ((17, 5), 4), ((40, 64), 100), ((3, 200), 50)])
def test_duplicate_rate_matches_a_loop_reference(shape, high: int) -> None:
    ids = torch.randint(0, high, shape, generator=torch.Generator().manual_seed(high))
    got = duplicate_rate(ids)
    assert got.dtype == torch.float32 and got.dim() == 0
    assert got.item() == pytest.approx(_duplicate_rate_loop(ids), abs=1e-6)
    assert duplicate_rate(torch.full((4, 8), 3)).item() == pytest.approx(1 - 1 / 8)


def test_duplicate_rate_errors() -> None:
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        duplicate_rate(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        duplicate_rate(torch.zeros(2, 3))
