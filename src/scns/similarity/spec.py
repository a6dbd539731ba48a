"""Composite similarity specs: tie-breaking chains, weighted blends, and adaptive (dynamic) terms.

Grammar: ``TERM(+TERM)*`` with ``TERM = NAME[:ARG][:KEY=VALUE...][:WEIGHT]`` (a trailing number
is a weight; write ``prototypes:./0.5`` for a run directory named ``0.5``; a ``+`` cannot appear
inside a term).

* One term (``wordnet``, ``confusion:runs/r1``, ``bank``): that source's matrix as it is; a weight
  on a lone term is ignored.
* **Lexicographic** chain, no weights (``wordnet+glove``): order by the first source; pairs tied in
  it (within ``rtol``, see :data:`scns.similarity.base.DEFAULT_RTOL`) are ordered by the second,
  and so on. The result is the dense rank of that order over the off-diagonal pairs scaled to
  [0, 1] (pairs still tied in every source keep equal values), so top-k sets follow the chain
  exactly; the sources' magnitudes are not kept (a ``softmax`` class weighting sees ranks).
* **Blend**, every term weighted (``glove:0.5+wordnet:0.5``): ``sum_i w_i * R(S_i) / sum_i w_i``
  where ``R`` maps a source to the percentile of its off-diagonal values (mid-rank of each tie
  group, scaled to [0, 1]). Percentiles, not min-max: the sources live on unrelated scales
  (GloVe cosine in about [-0.2, 0.9], WordNet wup in (0, 1], lch up to 3.6, confusion mostly 0
  with a heavy tail, a memory bank's cosines drifting as it trains), and min-max is set by the
  single most extreme pair, so one outlier (a confusion matrix's one confused pair) would squeeze
  the rest of that source to 0 and silence it. Percentiles give every source the same spread
  whatever its distribution, are invariant to monotone rescaling (``wordnet`` and
  ``wordnet:lch`` blend alike), keep symmetry and keep ties tied. The result lies in [0, 1].
* Mixing weighted and unweighted terms is an error, and so is naming a source twice.

Dynamic terms: ``bank`` is the cosine of the memory bank's L2-normalised class means
(:func:`scns.similarity.bank.bank_class_similarity`), only known during training. A spec splits
into its static part (computable now, once) and its dynamic part (recomputed by the caller, e.g.
at each epoch start)::

    spec = SimilaritySpec.parse("glove:0.5+bank:0.5")
    spec.static_names, spec.dynamic_names          # ('glove',), ('bank',)
    static = spec.static_part(classes, context=context)   # Tensor [C, C] or None (no static term)
    ...                                                   # each epoch:
    sim = spec.combine(static, {"bank": bank_class_similarity(bank_rows, labels, C)})

``static_part`` is exactly what ``combine`` expects; for a spec with no dynamic term it already
is the final matrix and ``combine(static, {})`` returns it. In a lexicographic chain the dynamic
terms must come last (``wordnet+bank``: WordNet, ties broken by the bank). Every matrix returned
is float32 [C, C], symmetric, with ``-inf`` on the diagonal, on the device of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from scns.similarity.base import DEFAULT_RTOL, SimilarityError
from scns.similarity.registry import parse_spec

DYNAMIC_SOURCES: dict[str, str] = {
    "bank": "cosine of the memory bank's L2-normalised class means, recomputed during training",
}
"""Sources only known during training: name -> what it is. ``combine`` takes them by name."""

Mode = Literal["single", "lexicographic", "blend"]


@dataclass(frozen=True)
class SimilarityTerm:
    """One ``+``-separated term: a source spec (``wordnet:lch``, ``bank``) and its weight, if any."""

    source: str
    weight: float | None = None

    @property
    def name(self) -> str:
        """The registry name (``wordnet`` for ``wordnet:lch``)."""
        return self.source.partition(":")[0]

    @property
    def dynamic(self) -> bool:
        return self.name in DYNAMIC_SOURCES


def _parse_term(text: str, spec: str) -> SimilarityTerm:
    text = text.strip()
    if not text:
        raise SimilarityError(f"similarity spec {spec!r} has an empty term (check the '+' signs)")
    weight = None
    head, sep, last = text.rpartition(":")
    if sep:
        try:
            weight = float(last)
        except ValueError:
            weight = None
        else:
            if not math.isfinite(weight) or weight <= 0:
                raise SimilarityError(f"{spec!r}: the weight of '{head}' must be a number > 0, got {last}")
            text = head
    if text.partition(":")[0] in DYNAMIC_SOURCES:
        if ":" in text:
            raise SimilarityError(f"{spec!r}: '{text.partition(':')[0]}' takes no ':ARG'")
    else:
        parse_spec(text)  # unknown names and bad args fail here, with the registry's message
    return SimilarityTerm(text, weight)


@dataclass(frozen=True)
class SimilaritySpec:
    """A parsed similarity spec (see the module docstring for the grammar and the combination rules).

    Attributes:
        text: the spec as written.
        terms: its terms, in order.
        mode: ``single``, ``lexicographic`` or ``blend``.
        rtol: tie tolerance used when ranking (lexicographic) and grouping (blend percentiles).
    """

    text: str
    terms: tuple[SimilarityTerm, ...]
    mode: Mode
    rtol: float = DEFAULT_RTOL

    @classmethod
    def parse(cls, text: str | SimilaritySpec, *, rtol: float = DEFAULT_RTOL) -> SimilaritySpec:
        """Parse ``text``; ``SimilarityError`` says what is wrong (unknown source, mixed weights, ...)."""
        if isinstance(text, SimilaritySpec):
            return text
        text = str(text).strip()
        if not text:
            raise SimilarityError("empty similarity spec; e.g. wordnet, wordnet+glove, glove:0.5+bank:0.5")
        terms = tuple(_parse_term(part, text) for part in text.split("+"))
        sources = [t.source for t in terms]
        repeated = sorted({s for s in sources if sources.count(s) > 1})
        if repeated:
            raise SimilarityError(f"{text!r} names {', '.join(repeated)} twice")
        if len(terms) == 1:
            return cls(text, terms, "single", rtol)
        weighted = [t.weight is not None for t in terms]
        if all(weighted):
            return cls(text, terms, "blend", rtol)
        if any(weighted):
            raise SimilarityError(
                f"{text!r} mixes weighted and unweighted terms: weight every term for a blend "
                "(glove:0.5+wordnet:0.5) or none for a tie-breaking chain (wordnet+glove)"
            )
        kinds = [t.dynamic for t in terms]
        if kinds != sorted(kinds):  # a static term after a dynamic one
            raise SimilarityError(
                f"{text!r}: in a tie-breaking chain the training-time sources "
                f"({', '.join(DYNAMIC_SOURCES)}) must come last, e.g. wordnet+bank"
            )
        return cls(text, terms, "lexicographic", rtol)

    @property
    def static_names(self) -> tuple[str, ...]:
        """Source specs of the terms computable now (e.g. ``('glove',)``)."""
        return tuple(t.source for t in self.terms if not t.dynamic)

    @property
    def dynamic_names(self) -> tuple[str, ...]:
        """Names of the terms only known during training (e.g. ``('bank',)``): ``combine``'s keys."""
        return tuple(t.source for t in self.terms if t.dynamic)

    @property
    def is_dynamic(self) -> bool:
        return bool(self.dynamic_names)

    def _total_weight(self) -> float:
        return sum(float(t.weight or 0.0) for t in self.terms)

    def static_part(
        self,
        class_names: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        **options: Any,
    ) -> Tensor | None:
        """What :meth:`combine` takes as ``static``: float32 [C, C] on the CPU, or None.

        Each static term goes through :func:`scns.similarity.class_similarity` (so through the
        cache). For a spec without dynamic terms this is the final similarity. ``options`` go to
        every static term's source (only useful for a single term).
        """
        from scns.similarity.api import class_similarity

        static = [t for t in self.terms if not t.dynamic]
        if not static:
            return None
        kwargs = {"context": context, "cache_dir": cache_dir, "use_cache": use_cache, **options}
        mats = [class_similarity(t.source, class_names, **kwargs) for t in static]
        if self.mode == "single":
            return mats[0]
        if self.mode == "lexicographic":
            return lexicographic_similarity(mats, rtol=self.rtol)
        total = self._total_weight()
        acc = torch.zeros(mats[0].shape, dtype=torch.float64)
        for term, matrix in zip(static, mats, strict=True):
            acc += float(term.weight or 0.0) / total * percentile_similarity(matrix, self.rtol)
        return _finish(acc)

    def combine(self, static: Tensor | None, dynamic: Mapping[str, Tensor] | None = None) -> Tensor:
        """The full similarity from the static part and the dynamic terms' matrices.

        Args:
            static: :meth:`static_part`'s result (None when the spec has no static term).
            dynamic: one float [C, C] per name in :attr:`dynamic_names` (e.g. ``{"bank": S}``),
                finite off the diagonal.

        Returns:
            float32 [C, C], symmetric, ``-inf`` on the diagonal, on the dynamic matrices' device
            (else the static part's).
        """
        dynamic = dict(dynamic or {})
        if set(dynamic) != set(self.dynamic_names):
            raise SimilarityError(
                f"{self.text!r} needs dynamic matrices for {sorted(self.dynamic_names)}, got {sorted(dynamic)}"
            )
        if (static is None) != (not self.static_names):
            raise SimilarityError(
                f"{self.text!r}: static part is {'missing' if static is None else 'unexpected'}; "
                "pass spec.static_part(...)"
            )
        device = next(iter(dynamic.values())).device if dynamic else static.device  # type: ignore[union-attr]
        if static is not None:
            static = static.to(device)
        dyn = [_finish(dynamic[t.source].to(device)) for t in self.terms if t.dynamic]
        if not dyn:
            return static  # type: ignore[return-value]
        if self.mode == "single":
            return dyn[0]
        if self.mode == "lexicographic":
            return lexicographic_similarity(([static] if static is not None else []) + dyn, rtol=self.rtol)
        total = self._total_weight()
        acc = (
            static.to(torch.float64) if static is not None else torch.zeros_like(dyn[0], dtype=torch.float64)
        )
        acc = acc.nan_to_num(neginf=0.0)
        weights = [float(t.weight or 0.0) for t in self.terms if t.dynamic]
        for w, m in zip(weights, dyn, strict=True):
            acc = acc + w / total * percentile_similarity(m, self.rtol)
        return _finish(acc)

    def compute(self, class_names: Sequence[str], **kwargs: Any) -> Tensor:
        """The full similarity of a spec with no dynamic term (``SimilarityError`` otherwise)."""
        if self.is_dynamic:
            raise SimilarityError(
                f"{self.text!r} uses {', '.join(self.dynamic_names)}, known only during training "
                "(scns train/distill --similarity ...); outside training pick a static source"
            )
        out = self.static_part(class_names, **kwargs)
        assert out is not None
        return out


def _finish(matrix: Tensor) -> Tensor:
    """Symmetrise, float32, ``-inf`` diagonal; stays on the input's device."""
    c = matrix.shape[0]
    s = matrix.to(torch.float64)
    off = ~torch.eye(c, dtype=torch.bool, device=s.device)
    s = s.masked_fill(~off, 0.0)
    s = (s + s.T) / 2
    if not bool(torch.isfinite(s[off]).all()):
        raise SimilarityError("a similarity term is not finite off the diagonal (NaN or inf)")
    return s.to(torch.float32).masked_fill(~off, float("-inf")).contiguous()


def _off_values(matrix: Tensor) -> tuple[Tensor, Tensor]:
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise SimilarityError(
            f"a similarity must be a square [C, C] matrix with C >= 2, got {list(matrix.shape)}"
        )
    c = matrix.shape[0]
    off = ~torch.eye(c, dtype=torch.bool, device=matrix.device)
    values = matrix.to(torch.float64)[off]
    if not bool(torch.isfinite(values).all()):
        raise SimilarityError("a similarity term is not finite off the diagonal (NaN or inf)")
    return values, off


def tie_groups(values: Tensor, rtol: float = DEFAULT_RTOL) -> Tensor:
    """Dense, order-preserving group ids of ``values`` [M]: sorted neighbours within
    ``rtol * max(1, |v|)`` share a group. Returns int64 [M] in ``[0, groups)``."""
    sorted_values, order = torch.sort(values.to(torch.float64))
    gap = sorted_values[1:] - sorted_values[:-1]
    scale = torch.maximum(sorted_values[1:].abs(), sorted_values[:-1].abs()).clamp_min(1.0)
    starts = torch.cat([gap.new_zeros(1, dtype=torch.long), (gap > rtol * scale).long()])
    ids = torch.empty_like(order)
    ids[order] = torch.cumsum(starts, 0)
    return ids


def percentile_similarity(matrix: Tensor, rtol: float = DEFAULT_RTOL) -> Tensor:
    """Each off-diagonal value's percentile among them, in [0, 1] (a tie group gets its mid-rank).

    Args:
        matrix: [C, C] (diagonal ignored, off-diagonal finite).

    Returns:
        float64 [C, C], 0 on the diagonal; symmetric when ``matrix`` is.
    """
    values, off = _off_values(matrix)
    m = values.shape[0]
    groups = tie_groups(values, rtol)
    n_groups = int(groups.max()) + 1
    counts = torch.bincount(groups, minlength=n_groups).to(torch.float64)
    first = torch.cumsum(counts, 0) - counts  # sorted position of each group's first member
    mid = first + (counts - 1) / 2
    out = torch.zeros(matrix.shape, dtype=torch.float64, device=matrix.device)
    out[off] = mid[groups] / max(m - 1, 1)
    return out


def lexicographic_similarity(matrices: Sequence[Tensor], rtol: float = DEFAULT_RTOL) -> Tensor:
    """Order pairs by the first matrix, ties (within ``rtol``) by the next, and so on.

    Args:
        matrices: one or more [C, C] (diagonals ignored, off-diagonals finite), most important first.

    Returns:
        float32 [C, C]: the dense rank of the chained order over the off-diagonal pairs divided by
        the largest rank (values in [0, 1]; pairs tied in every matrix stay equal), symmetric when
        the inputs are, ``-inf`` on the diagonal, on the first matrix's device.
    """
    if not matrices:
        raise SimilarityError("a tie-breaking chain needs at least one similarity")
    key: Tensor | None = None
    off = None
    for matrix in matrices:
        values, off = _off_values(matrix.to(matrices[0].device))
        if key is not None and values.shape != key.shape:
            raise SimilarityError("the similarities of a chain must all be [C, C] for the same C")
        groups = tie_groups(values, rtol)
        if key is None:
            key = groups
        else:  # exact integers: (key, groups) -> dense rank, at most C^2 * C^2 < 2^63
            key = torch.unique(key * (int(groups.max()) + 1) + groups, return_inverse=True)[1]
    assert key is not None and off is not None
    top = max(int(key.max()), 1)
    out = torch.full(matrices[0].shape, float("-inf"), dtype=torch.float32, device=matrices[0].device)
    out[off] = (key.to(torch.float64) / top).to(torch.float32)
    return out
