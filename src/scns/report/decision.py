"""What becomes the product's default: the pre-registered rule (BENCHMARKS.md s. 8) applied to the
decisive grid's test results.

The rule was fixed before any main-grid run had trained; it turns the grid's paired comparisons into
the configuration the presets and ``scns demo`` ship, so the shipped default is whatever was
measured, not what was hoped:

1. **Method.** CRD+KD if CRD+KD uniform minus KD has a 95 % interval above 0; otherwise KD (the
   contrastive term costs ~1.4x KD's step and must earn it).
2. **Negatives** (inside CRD+KD), the first that holds:
   a. the best class-level SCNS arm, if the primary comparison (it minus CRD+KD uniform) has a 95 %
      interval above 0;
   b. another SCNS arm (sample_topk, mixup, class_topk K = 1,024) minus CRD+KD uniform above 0 at
      the Bonferroni-widened 98.75 % interval (four SCNS arms against one baseline); of several,
      the highest mean difference;
   c. class_topk at K = 1,024, if it is equivalent to uniform at K = 16,384 within +-0.5 points
      (the pre-registered equivalence): the same accuracy for 16x fewer negatives;
   d. otherwise uniform at K = 16,384.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from scns.report.stats import PairedDiff, inside_margin, paired_difference

UNIFORM = "crd+kd uniform"
KD = "kd"
#: The prefix of the chosen class-level arm's method label in the main grid (the grid's own is
#: ``scns.train.protocols.BEST_CLASS_PREFIX``; reports do not import the grid runner, and a test holds
#: the two equal).
BEST_CLASS_LEVEL = "best class-level"
#: The other SCNS arms of the main grid, each compared with :data:`UNIFORM`.
OTHER_SCNS_ARMS = (
    "crd+kd sample_topk skip2%",
    "crd+kd uniform + mixup beta cap",
    "crd+kd class_topk wordnet+glove k1024",
)
FEWER_NEGATIVES_ARM = "crd+kd class_topk wordnet+glove k1024"
#: The pre-registered equivalence margin, points of top-1.
EQUIVALENCE_MARGIN = 0.5
#: Interval levels: the primary comparison and the method at 95 %, the other arms Bonferroni-widened
#: over the family of four SCNS arms (0.05 / 4 per comparison).
LEVEL = 0.95
FAMILY_LEVEL = 1 - 0.05 / 4


@dataclass(frozen=True)
class Decision:
    """The shipped default and why: ``method`` is "crd+kd" or "kd"; ``negatives`` the main grid's arm
    label whose sampler CRD+KD ships with (None while the grid lacks what the rule needs)."""

    method: str | None
    negatives: str | None
    reasons: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.method is not None and self.negatives is not None


def top1_by_method(runs: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """method label (the class-level arm as :data:`BEST_CLASS_LEVEL`) -> seed -> final top-1."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in runs:
        label = BEST_CLASS_LEVEL if r["method"].startswith(BEST_CLASS_LEVEL) else r["method"]
        out[label][r["seed"]] = r["final_top1"]
    return out


def chosen_class_arm(runs: list[dict[str, Any]]) -> str:
    """The main grid's label of the chosen class-level arm (:data:`BEST_CLASS_LEVEL` while none has run)."""
    return next((r["method"] for r in runs if r["method"].startswith(BEST_CLASS_LEVEL)), BEST_CLASS_LEVEL)


def _above_zero(d: PairedDiff | None) -> bool:
    return d is not None and d.n >= 2 and d.low > 0


def _describe(name: str, d: PairedDiff | None, level: float) -> str:
    if d is None or d.n < 2:
        return f"{name}: fewer than 2 paired seeds"
    return f"{name}: {d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] ({level:.2%} interval, {d.n} seeds)"


def product_default(runs: list[dict[str, Any]], seeds_required: int = 4) -> Decision:
    """Apply the rule to the main grid's runs (records of ``results.json`` with ``method``, ``seed``,
    ``final_top1``; pilot runs must be left out by the caller).

    Args:
        seeds_required: paired seeds every compared arm must have before the rule decides (the
            pre-registered 4); with fewer the decision is incomplete and says what is missing.
    """
    top1 = top1_by_method(runs)
    needed = [KD, UNIFORM, BEST_CLASS_LEVEL, *OTHER_SCNS_ARMS, "crd+kd uniform k1024"]
    missing = [m for m in needed if len(top1.get(m, {})) < seeds_required]
    if missing:
        return Decision(
            None, None, (f"not decided: fewer than {seeds_required} seeds of {', '.join(missing)}",)
        )
    uniform = top1[UNIFORM]

    pays = paired_difference(uniform, top1[KD], LEVEL)
    reasons = [_describe("crd+kd uniform - kd", pays, LEVEL)]
    method = "crd+kd" if _above_zero(pays) else "kd"
    reasons.append(
        "the contrastive term pays: the default is CRD+KD"
        if method == "crd+kd"
        else "the contrastive term is not shown to pay: the default is KD"
    )

    primary = paired_difference(top1[BEST_CLASS_LEVEL], uniform, LEVEL)
    reasons.append(_describe("best class-level - crd+kd uniform", primary, LEVEL))
    if _above_zero(primary):
        reasons.append("rule 2a: the best class-level arm beats uniform")
        return Decision(method, chosen_class_arm(runs), tuple(reasons))

    winners: list[tuple[float, str]] = []
    for arm in OTHER_SCNS_ARMS:
        d = paired_difference(top1[arm], uniform, FAMILY_LEVEL)
        reasons.append(_describe(f"{arm} - crd+kd uniform", d, FAMILY_LEVEL))
        if d is not None and _above_zero(d):  # the None test also narrows d for the type checker
            winners.append((d.mean, arm))
    if winners:
        arm = max(winners)[1]
        reasons.append(f"rule 2b: {arm} beats uniform at the family-wise level")
        return Decision(method, arm, tuple(reasons))

    same = paired_difference(top1[FEWER_NEGATIVES_ARM], uniform, LEVEL)
    reasons.append(_describe(f"{FEWER_NEGATIVES_ARM} - crd+kd uniform (equivalence)", same, LEVEL))
    if same is not None and inside_margin(same, EQUIVALENCE_MARGIN):
        reasons.append(f"rule 2c: 16x fewer negatives, equivalent within +-{EQUIVALENCE_MARGIN}")
        return Decision(method, FEWER_NEGATIVES_ARM, tuple(reasons))
    reasons.append("rule 2d: no SCNS arm shown better or equivalent at fewer negatives: uniform")
    return Decision(method, UNIFORM, tuple(reasons))
