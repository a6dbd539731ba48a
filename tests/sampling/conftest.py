"""Fixtures for sampler tests: an unequal label layout and a goodness-of-fit check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

# Class sizes deliberately unequal, with one empty class (2) to exercise the "skip empty" rules.
CLASS_SIZES = [5, 40, 0, 120, 15, 80, 40]
P_VALUE_FLOOR = 1e-3  # the stated tolerance: a correct sampler fails this with probability 1e-3 per test


@pytest.fixture
def unequal_labels() -> torch.Tensor:
    """int64 [300] labels with class sizes ``CLASS_SIZES``, shuffled with a fixed seed."""
    labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(CLASS_SIZES)])
    return labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(0))]


def _assert_fits(ids: torch.Tensor, probs: np.ndarray) -> float:
    """Chi-square goodness of fit of drawn ids against exact probabilities over all N ids.

    Ids of probability 0 must never appear (checked exactly); the test runs over the support.
    Returns the p-value, asserting it is above ``P_VALUE_FLOOR``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    assert abs(probs.sum() - 1) < 1e-9, "reference probabilities must sum to 1"
    counts = np.bincount(ids.flatten().cpu().numpy(), minlength=probs.size).astype(np.float64)
    assert counts[probs == 0].sum() == 0, (
        f"drew ids of probability 0: {np.nonzero(counts * (probs == 0))[0][:10]}"
    )
    support = probs > 0
    expected = probs[support] * counts.sum()
    assert expected.min() >= 5, "too few draws for a chi-square test"
    statistic = float((((counts[support] - expected) ** 2) / expected).sum())
    dof = int(support.sum()) - 1
    # chi-square survival function: the regularised upper incomplete gamma Q(dof / 2, x / 2)
    p_value = torch.special.gammaincc(
        torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(statistic / 2, dtype=torch.float64)
    ).item()
    assert p_value > P_VALUE_FLOOR, f"chi-square p-value {p_value:.2e} <= {P_VALUE_FLOOR}"
    return float(p_value)


@pytest.fixture
def assert_fits() -> Callable[[torch.Tensor, np.ndarray], float]:
    return _assert_fits
