"""``hierarchy``: 1 within a coarse group, 0 across, ties broken by another source.

With a tie-break similarity ``T`` (any other source), rescaled over its off-diagonal entries to
``U = (T - min T) / (max T - min T)`` in [0, 1] (``U = 0`` when ``T`` is constant):

    S[i, j] = same_group(i, j) + 0.5 * U[i, j]

so pairs inside a group score in [1, 1.5] and pairs across groups in [0, 0.5]: every class of
the same group ranks above every class of another group, and ``T`` orders classes within each of
those two bands. Without a tie-break, ``S`` is exactly 0/1.

Groups come from the ``groups`` option (one label per class, or a class name -> group map), else
from the shipped maps: CIFAR-100's 20 official superclasses, and for CIFAR-10 scns's own split
into vehicles and animals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from scns.similarity.base import SimilarityError
from scns.similarity.registry import build_source, parse_spec, register_source
from scns.similarity.shipped import default_groups, digest

TIEBREAK_WEIGHT = 0.5


def hierarchy_similarity(groups: Sequence[Any] | Tensor, tiebreak: Tensor | None = None) -> Tensor:
    """``same_group + 0.5 * minmax(tiebreak)`` (see module docstring).

    Args:
        groups: [C] group label per class (ints or strings).
        tiebreak: optional [C, C] similarity (diagonal ignored; off-diagonal must be finite).

    Returns:
        float32 [C, C].
    """
    if isinstance(groups, Tensor):
        ids = groups.long().flatten()
    else:
        index: dict[Any, int] = {}
        ids = torch.tensor([index.setdefault(g, len(index)) for g in groups], dtype=torch.long)
    c = ids.shape[0]
    same = (ids[:, None] == ids[None, :]).to(torch.float64)
    if tiebreak is None:
        return same.float()
    if tuple(tiebreak.shape) != (c, c):
        raise SimilarityError(f"tie-break similarity is {list(tiebreak.shape)}, expected [{c}, {c}]")
    t = tiebreak.detach().to(device="cpu", dtype=torch.float64)
    off = ~torch.eye(c, dtype=torch.bool)
    values = t[off]
    if not bool(torch.isfinite(values).all()):
        raise SimilarityError("tie-break similarity must be finite off the diagonal")
    lo, hi = values.min(), values.max()
    unit = (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)
    return (same + TIEBREAK_WEIGHT * unit.masked_fill(~off, 0.0)).float()


def resolve_groups(class_names: Sequence[str], groups: Sequence[Any] | Mapping[str, Any] | None) -> list[Any]:
    """One group label per class from ``groups`` (list or map) or the shipped maps."""
    if groups is not None and not isinstance(groups, Mapping):
        labels = list(groups)
        if len(labels) != len(class_names):
            raise SimilarityError(
                f"got {len(labels)} group labels for {len(class_names)} classes; give one per class"
            )
        return labels
    table = dict(groups) if groups is not None else default_groups()
    missing = [n for n in class_names if n not in table]
    if missing:
        raise SimilarityError(
            f"no coarse group for {len(missing)} class(es): {', '.join(missing[:8])}{'...' if len(missing) > 8 else ''}. "
            "Built-in groups cover CIFAR-10 and CIFAR-100; pass groups=[one label per class] or {name: group}"
        )
    return [table[n] for n in class_names]


class HierarchySimilarity:
    """Coarse-group similarity with an optional tie-break source (see module docstring)."""

    name = "hierarchy"

    def __init__(
        self,
        groups: Sequence[Any] | Mapping[str, Any] | None = None,
        tiebreak: str | None = None,
        tiebreak_options: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.groups = groups.tolist() if isinstance(groups, Tensor) else groups
        self.tiebreak = tiebreak
        self.tiebreak_options = dict(tiebreak_options or {})
        self.context = dict(context or {})
        if tiebreak is not None and parse_spec(tiebreak)[0] == "hierarchy":
            raise SimilarityError("hierarchy cannot break its ties with itself; name another source")

    def _tiebreak_context(self) -> dict[str, Any]:
        return {k: v for k, v in self.context.items() if k not in ("cache_dir", "use_cache")}

    def fingerprint(self) -> dict[str, Any] | None:
        groups: Any = self.groups
        if isinstance(groups, Mapping):
            groups = {str(k): v for k, v in groups.items()}
        elif groups is not None:
            groups = list(groups)
        out: dict[str, Any] = {
            "groups": groups,
            "shipped": digest("cifar_classes.json"),
            "weight": TIEBREAK_WEIGHT,
        }
        if self.tiebreak is not None:
            source = build_source(self.tiebreak, self._tiebreak_context(), **self.tiebreak_options)
            inner = source.fingerprint()
            if inner is None:
                return None
            out["tiebreak"] = {"source": source.name, "fingerprint": inner}
        return out

    def compute(self, class_names: list[str]) -> Tensor:
        labels = resolve_groups(class_names, self.groups)
        tiebreak = None
        if self.tiebreak is not None:
            from scns.similarity.api import class_similarity  # the tie-break goes through the cache too

            tiebreak = class_similarity(
                self.tiebreak,
                class_names,
                cache_dir=self.context.get("cache_dir"),
                use_cache=self.context.get("use_cache", True),
                context=self._tiebreak_context(),
                **self.tiebreak_options,
            )
        return hierarchy_similarity(labels, tiebreak)


@register_source("hierarchy", spec_arg="tiebreak")
def hierarchy(
    groups: Sequence[Any] | Mapping[str, Any] | None = None,
    tiebreak: str | None = None,
    tiebreak_options: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> HierarchySimilarity:
    """1 within a coarse group, 0 across; ``tiebreak`` (a source spec, e.g. ``glove``) orders ties."""
    return HierarchySimilarity(
        groups=groups, tiebreak=tiebreak, tiebreak_options=tiebreak_options, context=context
    )
