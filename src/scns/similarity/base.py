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


class SimilarityError(RuntimeError):
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


def top_k(sim: Tensor, k: int) -> Tensor:
    """The ``k`` most similar other classes of every class.

    Ties are broken by the lower class id (stable sort), so the result is deterministic; the class
    itself is never returned, whatever its diagonal value.

    Args:
        sim: [C, C] similarity (diagonal ignored).
        k: neighbours per class, ``1 <= k <= C - 1``.

    Returns:
        int64 [C, k] class ids, most similar first.

    Raises:
        ValueError: ``sim`` not square, or ``k`` outside ``[1, C - 1]`` (the message names C - 1).
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square [C, C] matrix, got shape {list(sim.shape)}")
    c = sim.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= c - 1:
        raise ValueError(f"k must be an integer in [1, {c - 1}] for {c} classes (at most C - 1), got {k!r}")
    order = torch.sort(sim.float(), dim=1, descending=True, stable=True).indices  # [C, C]
    not_self = order != torch.arange(c, device=sim.device)[:, None]
    return order[not_self].view(c, c - 1)[:, :k]


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
        """int64 [C, k] most similar other classes, most similar first (see :func:`top_k`)."""
        return top_k(self.matrix, k)

    def index(self, name: str) -> int:
        """The class id of ``name``; ``SimilarityError`` lists close names when it is unknown."""
        try:
            return self.classes.index(name)
        except ValueError:
            import difflib

            close = difflib.get_close_matches(name, self.classes, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise SimilarityError(f"unknown class '{name}'.{hint}") from None

    def neighbours(self, name: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest classes of ``name`` with their scores, most similar first."""
        i = self.index(name)
        ids = top_k(self.matrix, k)[i]
        return [(self.classes[j], float(self.matrix[i, j])) for j in ids.tolist()]
