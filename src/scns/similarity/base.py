"""The shared contract of every similarity source: the error type, the [C, C] matrix, top-k.

A class similarity is a float32 [C, C] tensor ``S`` with ``S[i, j]`` the similarity of class ``i``
to class ``j``. Every matrix handed out by :func:`scns.similarity.class_similarity` is

* symmetric (``S == S.T`` exactly),
* finite off the diagonal, and
* ``-inf`` on the diagonal, so a class is never its own nearest neighbour: ``S.topk(k)`` and
  :func:`top_k` can be used directly, and ``softmax(S / T)`` gives the diagonal zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from scns.errors import ScnsError

DEFAULT_RTOL = 1e-6
"""Relative tolerance under which two similarity values count as tied (absolute below 1)."""


class SimilarityError(ScnsError, RuntimeError):
    """A user-facing failure of a similarity source (missing extra or data, unknown words, bad input).

    The message says what is wrong and the command or option that fixes it; the CLI prints it
    without a traceback.
    """


def cosine_matrix(vectors: Tensor) -> Tensor:
    """Pairwise cosine similarity of the rows of ``vectors``.

    Args:
        vectors: float [C, D]; a zero row raises ``SimilarityError`` (its cosine is undefined).

    Returns:
        float32 [C, C] with entries in [-1, 1].
    """
    if vectors.dim() != 2:
        raise SimilarityError(f"expected a [C, D] matrix of class vectors, got shape {list(vectors.shape)}")
    v = vectors.to(torch.float32)
    zero = v.norm(dim=1) == 0
    if bool(zero.any()):
        raise SimilarityError(f"class vectors {torch.nonzero(zero).flatten().tolist()} are all zeros")
    v = F.normalize(v, dim=1)
    return (v @ v.T).clamp_(-1.0, 1.0)


def check_labels(labels: Tensor, n: int, num_classes: int, what: str) -> Tensor:
    """Validate int class ids [n] in [0, num_classes); returns them as int64."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != n:
        raise SimilarityError(f"labels must be [N] with N = {n} (one per {what}), got {list(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise SimilarityError(f"labels must be integer class ids, got {labels.dtype}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise SimilarityError(
            f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels.long()


def require_all_classes(counts: Tensor) -> None:
    """Raise when some class has a zero count (counts: [C])."""
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if empty:
        raise SimilarityError(f"classes {empty[:10]}{'...' if len(empty) > 10 else ''} have no samples")


def finalize_similarity(matrix: Tensor, class_names: list[str] | None = None) -> Tensor:
    """Symmetrise ``(S + S.T) / 2``, cast to float32 and put ``-inf`` on the diagonal.

    Args:
        matrix: [C, C] raw scores from a source.
        class_names: only used to name offending classes in errors.

    Returns:
        float32 [C, C], symmetric, finite off the diagonal, ``-inf`` on it.

    Raises:
        SimilarityError: not square, or a NaN/inf off the diagonal.
    """
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise SimilarityError(f"a similarity must be a square [C, C] matrix, got {list(matrix.shape)}")
    c = matrix.shape[0]
    s = matrix.detach().to(device="cpu", dtype=torch.float32)
    s = (s + s.T) / 2
    off = ~torch.eye(c, dtype=torch.bool)
    bad = off & ~torch.isfinite(s)
    if bool(bad.any()):
        i, j = (int(t) for t in torch.nonzero(bad)[0])
        names = class_names or [str(k) for k in range(c)]
        raise SimilarityError(
            f"similarity of '{names[i]}' and '{names[j]}' is {s[i, j].item()} (not finite); "
            "the source produced NaN or inf"
        )
    return s.masked_fill_(~off, float("-inf")).contiguous()


def _check_square(sim: Tensor) -> int:
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square [C, C] matrix, got shape {list(sim.shape)}")
    return sim.shape[0]


def _check_k(k: int, c: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= c - 1:
        raise ValueError(f"k must be an integer in [1, {c - 1}] for {c} classes (at most C - 1), got {k!r}")


def top_k(sim: Tensor, k: int) -> Tensor:
    """The ``k`` most similar other classes of every class, ties broken by class id (legacy).

    Ties are broken by the lower class id (stable sort), so the result is deterministic but
    depends on class order wherever the k-th place falls inside a tie (81 of 100 CIFAR-100
    WordNet rows at k = 10). This is the selection the earlier grids ran on; new code wants
    :func:`topk_weights` (whole tie groups, order-free). The class itself is never returned,
    whatever its diagonal value.

    Args:
        sim: [C, C] similarity (diagonal ignored).
        k: neighbours per class, ``1 <= k <= C - 1``.

    Returns:
        int64 [C, k] class ids, most similar first.

    Raises:
        ValueError: ``sim`` not square, or ``k`` outside ``[1, C - 1]`` (the message names C - 1).
    """
    c = _check_square(sim)
    _check_k(k, c)
    order = torch.sort(sim.float(), dim=1, descending=True, stable=True).indices  # [C, C]
    not_self = order != torch.arange(c, device=sim.device)[:, None]
    return order[not_self].view(c, c - 1)[:, :k]


def topk_split(similarity: Tensor, k: int, *, rtol: float = DEFAULT_RTOL) -> tuple[Tensor, Tensor]:
    """Each row's classes strictly above its k-th most similar other class, and the tie group at k.

    ``s_k`` is the k-th largest value of row ``c`` over the other classes; values within
    ``tol = rtol * max(1, |s_k|)`` of ``s_k`` form the tie group straddling the k-th place.
    Both sets depend only on the values, never on class order.

    Args:
        similarity: [C, C] (diagonal ignored; off-diagonal must be finite).
        k: ``1 <= k <= C - 1``.
        rtol: relative tie tolerance (absolute below magnitude 1), >= 0.

    Returns:
        (above bool [C, C], tied bool [C, C]), disjoint, False on the diagonal; per row
        ``above.sum() < k <= above.sum() + tied.sum()``.
    """
    c = _check_square(similarity)
    _check_k(k, c)
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    s = similarity.detach().to(torch.float64)
    off = ~torch.eye(c, dtype=torch.bool, device=s.device)
    if not bool(torch.isfinite(s[off]).all()):
        raise ValueError("similarity must be finite off the diagonal (found NaN or inf)")
    s = s.masked_fill(~off, float("-inf"))
    kth = torch.topk(s, k, dim=1).values[:, k - 1 : k]  # [C, 1]: a value, so order-free
    tol = rtol * kth.abs().clamp_min(1.0)
    above = (s > kth + tol) & off
    tied = ((s - kth).abs() <= tol) & off
    return above, tied


def topk_weights(similarity: Tensor, k: int, *, rtol: float = DEFAULT_RTOL) -> Tensor:
    """Tie-aware top-k class weights: whole tie groups, never broken by class id.

    Row ``c`` gives weight 1 to every other class strictly more similar than its k-th most
    similar other class, and the tie group straddling the k-th place (see :func:`topk_split`)
    shares the remaining ``k - n_above`` slots equally; 0 elsewhere and on the diagonal. Every
    row sums to ``k`` (up to float64 rounding), and permuting the classes permutes the result:
    ``topk_weights(S[p][:, p], k) == topk_weights(S, k)[p][:, p]``.

    Use this for class-level negatives; :func:`top_k` is the old, order-dependent selection
    (ties broken by lower class id) kept so earlier grids can be rerun.

    Args:
        similarity: [C, C] (diagonal ignored; off-diagonal must be finite).
        k: expected number of classes per row, ``1 <= k <= C - 1``.
        rtol: relative tie tolerance: values within ``rtol * max(1, |s_k|)`` of the k-th value tie.

    Returns:
        float64 [C, C] weights in [0, 1], on the similarity's device.
    """
    above, tied = topk_split(similarity, k, rtol=rtol)
    n_above = above.sum(1, keepdim=True).to(torch.float64)
    share = (k - n_above) / tied.sum(1, keepdim=True).to(torch.float64)  # tied.sum >= 1
    return above.to(torch.float64) + tied.to(torch.float64) * share


def topk_tie_stats(similarity: Tensor, k: int, *, rtol: float = DEFAULT_RTOL) -> dict[str, int]:
    """How much an order-based top-k (:func:`top_k`) depends on tie order.

    Returns:
        ``rows_cut``: rows whose k-th place falls inside a tie group larger than the slots left
        for it; ``slots_by_order``: top-k slots such rows fill by tie order (``k - n_above``
        each); ``rows``: C; ``slots``: C * k.
    """
    above, tied = topk_split(similarity, k, rtol=rtol)
    n_above, n_tied = above.sum(1), tied.sum(1)
    cut = n_above + n_tied > k
    return {
        "rows": int(above.shape[0]),
        "slots": int(above.shape[0]) * k,
        "rows_cut": int(cut.sum()),
        "slots_by_order": int((k - n_above)[cut].sum()),
    }


@dataclass(frozen=True)
class ClassSimilarity:
    """A similarity matrix with the class names it belongs to.

    Attributes:
        matrix: float32 [C, C], symmetric, ``-inf`` diagonal (see module docstring).
        classes: the C class names, in matrix order.
        source: the source spec that produced it (e.g. ``"wordnet"``, ``"prototypes:runs/r1"``).
    """

    matrix: Tensor
    classes: list[str]
    source: str = ""

    def __post_init__(self) -> None:
        c = len(self.classes)
        if tuple(self.matrix.shape) != (c, c):
            raise SimilarityError(f"matrix is {list(self.matrix.shape)} but there are {c} class names")

    def top_k(self, k: int) -> Tensor:
        """int64 [C, k] most similar other classes, ties by class id (legacy; see :func:`top_k`)."""
        return top_k(self.matrix, k)

    def topk_weights(self, k: int, *, rtol: float = DEFAULT_RTOL) -> Tensor:
        """float64 [C, C] tie-aware top-k weights (see :func:`topk_weights`)."""
        return topk_weights(self.matrix, k, rtol=rtol)

    def index(self, name: str) -> int:
        """The class id of ``name``; ``SimilarityError`` lists close names when it is unknown."""
        try:
            return self.classes.index(name)
        except ValueError:
            import difflib

            close = difflib.get_close_matches(name, self.classes, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise SimilarityError(f"unknown class '{name}'.{hint}") from None

    def neighbour_groups(
        self, name: str, k: int, *, rtol: float = DEFAULT_RTOL
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]], float]:
        """Tie-aware neighbours of ``name`` (see :func:`topk_weights`).

        Returns:
            (above, tied, share): the classes strictly above the k-th value (weight 1 each) and
            the tie group at the k-th place (``share`` = weight of each, ``(k - len(above)) /
            len(tied)``), each as (name, score) pairs, most similar first, equal scores by name.
        """
        i = self.index(name)
        above, tied = topk_split(self.matrix, k, rtol=rtol)

        def listed(mask: Tensor) -> list[tuple[str, float]]:
            pairs = [
                (self.classes[j], float(self.matrix[i, j])) for j in torch.nonzero(mask[i]).flatten().tolist()
            ]
            return sorted(pairs, key=lambda p: (-p[1], p[0]))

        up, tie = listed(above), listed(tied)
        return up, tie, (k - len(up)) / len(tie)

    def neighbours(self, name: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest classes of ``name`` with their scores, most similar first (legacy cut:
        ties by class id; :meth:`neighbour_groups` shows the ties)."""
        i = self.index(name)
        ids = top_k(self.matrix, k)[i]
        return [(self.classes[j], float(self.matrix[i, j])) for j in ids.tolist()]
