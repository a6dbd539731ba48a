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
    p_value: float = math.nan  # two-sided paired t-test of "mean difference = 0" (NaN for one pair)

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
    dof = len(diffs) - 1
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    half = t_quantile(0.5 + level / 2, dof) * se
    if se > 0:
        p_value = 2.0 * t_tail(abs(mean) / se, dof)
    else:  # identical differences: p is 0 unless they are all 0
        p_value = 1.0 if mean == 0 else 0.0
    return PairedDiff(mean, mean - half, mean + half, len(diffs), p_value)


def t_tail(x: float, dof: int) -> float:
    """P(T > x) for Student's t with ``dof`` degrees of freedom (scipy's)."""
    from scipy.stats import t

    return float(t.sf(x, dof))


def inside_margin(d: PairedDiff, margin: float) -> bool:
    """Equivalence: the whole interval lies within [-margin, +margin] (needs two or more pairs)."""
    return d.n >= 2 and -margin <= d.low and d.high <= margin
