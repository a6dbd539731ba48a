"""Small-sample statistics for comparing methods across seeds."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def t_quantile(p: float, dof: int) -> float:
    """Student-t quantile (scipy's)."""
    from scipy.stats import t

    return float(t.ppf(p, dof))


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample standard deviation (0 for n = 1)
    n: int


def summarize(values: list[float]) -> Summary:
    """Mean, sample std and count of a list of accuracies."""
    if not values:
        raise ValueError("summarize needs at least one value")
    return Summary(
        statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)
    )


@dataclass(frozen=True)
class PairedDiff:
    """Mean of per-seed differences (method - baseline) with a two-sided t confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def within_noise(self) -> bool:
        """True when the interval contains 0 (or cannot be computed with one pair)."""
        return self.n < 2 or self.low <= 0.0 <= self.high


def paired_difference(
    method: dict[int, float], baseline: dict[int, float], level: float = 0.95
) -> PairedDiff | None:
    """Pair runs by seed and estimate the mean difference with a t interval.

    Args:
        method, baseline: seed -> accuracy. Only seeds present in both are used.
    Returns:
        None when no seed is shared; with one pair the interval is infinite.
    """
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        return None
    diffs = [method[s] - baseline[s] for s in seeds]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return PairedDiff(mean, -math.inf, math.inf, 1)
    half = t_quantile(0.5 + level / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return PairedDiff(mean, mean - half, mean + half, len(diffs))
