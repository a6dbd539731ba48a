"""How much two similarity sources agree.

For similarities ``A`` and ``B`` over the same C classes and a neighbourhood size k:

* ``overlap@k``: mean over classes of |top_k(A)[i] ∩ top_k(B)[i]| / k, in [0, 1];
* ``jaccard@k``: mean over classes of |∩| / |∪| of the two top-k sets, in [0, 1];

Top-k sets are tie-aware (:func:`scns.similarity.base.topk_weights`): a tie group at the k-th
place enters with its shared weight, and |∩| = sum_j min(w_A, w_B), |∪| = sum_j max(w_A, w_B) =
2k - |∩| (the plain set sizes when there are no ties), so no figure depends on class order.
* ``spearman``: Spearman rank correlation of the C(C-1)/2 entries above the diagonal (ties get
  their average rank), in [-1, 1]; NaN when either side is constant (e.g. 0/1 hierarchy has ties
  but is not constant).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from scns.similarity.base import SimilarityError, topk_weights


def _intersection(a: Tensor, b: Tensor, k: int) -> Tensor:
    """float64 [C]: tie-aware |top_k(a)[i] ∩ top_k(b)[i]| (see module docstring)."""
    return torch.minimum(topk_weights(a, k).cpu(), topk_weights(b, k).cpu()).sum(1)


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape or a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise SimilarityError(
            f"compare two [C, C] matrices of one class list, got {list(a.shape)} and {list(b.shape)}"
        )


def topk_overlap(a: Tensor, b: Tensor, k: int) -> float:
    """Mean share of each class's top-k neighbours that both similarities agree on."""
    _check_pair(a, b)
    return float((_intersection(a, b, k) / k).mean())


def topk_jaccard(a: Tensor, b: Tensor, k: int) -> float:
    """Mean Jaccard index of the two top-k neighbour sets of each class."""
    _check_pair(a, b)
    inter = _intersection(a, b, k)
    return float((inter / (2 * k - inter)).mean())


def upper_spearman(a: Tensor, b: Tensor) -> float:
    """Spearman correlation of the entries above the diagonal of ``a`` and ``b`` (scipy's
    ``spearmanr``: ties get their average rank); NaN when either side is constant."""
    from scipy.stats import spearmanr

    _check_pair(a, b)
    c = a.shape[0]
    i, j = torch.triu_indices(c, c, offset=1)
    x, y = a[i, j].double().cpu().numpy(), b[i, j].double().cpu().numpy()
    if x.size < 2 or (x == x[0]).all() or (y == y[0]).all():
        return float("nan")  # undefined; scipy would say so with a warning
    return float(spearmanr(x, y).statistic)


@dataclass(frozen=True)
class Agreement:
    """Agreement of sources ``a`` and ``b`` (see module docstring)."""

    a: str
    b: str
    k: int
    overlap: float
    jaccard: float
    spearman: float


def pairwise_agreement(matrices: dict[str, Tensor], k: int) -> list[Agreement]:
    """Agreement of every pair of named similarities, in the order given."""
    names = list(matrices)
    rows = []
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            a, b = matrices[names[x]], matrices[names[y]]
            rows.append(
                Agreement(
                    names[x], names[y], k, topk_overlap(a, b, k), topk_jaccard(a, b, k), upper_spearman(a, b)
                )
            )
    return rows
