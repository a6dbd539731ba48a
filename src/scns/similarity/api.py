"""``class_similarity``: build a source, consult the cache, compute, finalise, store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from scns.similarity.base import ClassSimilarity, SimilarityError, finalize_similarity
from scns.similarity.cache import SimilarityCache, cache_key
from scns.similarity.registry import build_source


def _check_names(class_names: Sequence[str]) -> list[str]:
    if isinstance(class_names, str):
        raise SimilarityError("class_names must be a list of names, not one string")
    names = [str(n) for n in class_names]
    if len(names) < 2:
        raise SimilarityError(f"need at least 2 classes for a similarity, got {len(names)}")
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise SimilarityError(f"class names must be unique; repeated: {', '.join(dupes)}")
    return names


def class_similarity(
    source: str,
    class_names: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    context: Mapping[str, Any] | None = None,
    **options: Any,
) -> Tensor:
    """Class-to-class similarity of ``class_names`` from a named source.

    Args:
        source: a spec ``NAME[:ARG][:KEY=VALUE...]``: ``glove``, ``wordnet[:wup|path|lch]``,
            ``text``, ``prototypes:RUN_DIR``, ``confusion:RUN_DIR``, ``hierarchy[:TIEBREAK_SPEC]``,
            ``teacher:prototypes|confusion`` (distillation); or a composite of them:
            ``wordnet+glove`` (ties of the first broken by the next) or ``glove:0.5+wordnet:0.5``
            (a blend of percentiles); see :mod:`scns.similarity.spec`. ``bank`` terms are only
            known during training (use :class:`~scns.similarity.spec.SimilaritySpec` there).
        class_names: the C class names, in label order.
        cache_dir: cache folder (default ``$SCNS_CACHE_DIR/similarity`` or
            ``~/.cache/scns/similarity``).
        use_cache: read and write the on-disk cache (sources without a fingerprint never cache).
        context: optional facts a source may use (``wnids``, ``groups``, ``data_dir``, ``device``,
            ``batch_size``); keys a source does not take are ignored.
        options: the source's own options (e.g. ``metric="lch"``, ``aliases={...}``).

    Returns:
        float32 [C, C]: symmetric, finite off the diagonal, ``-inf`` on the diagonal (so a class
        is never among its own nearest neighbours).

    Raises:
        SimilarityError: unknown source or option, missing extra or data, names a source cannot
            resolve; the message says how to fix it.
    """
    names = _check_names(class_names)
    from scns.similarity.spec import SimilaritySpec

    spec = SimilaritySpec.parse(source)
    if spec.mode != "single" or spec.is_dynamic:
        return spec.compute(names, cache_dir=cache_dir, use_cache=use_cache, context=context, **options)
    source = spec.terms[0].source  # a lone term's weight means nothing
    # Composite sources (hierarchy's tie-break) compute through this function again: same cache.
    src = build_source(source, {**(context or {}), "cache_dir": cache_dir, "use_cache": use_cache}, **options)
    fingerprint = src.fingerprint() if use_cache else None
    cache = key = None
    if fingerprint is not None:
        cache = SimilarityCache(cache_dir)
        key = cache_key(src.name, fingerprint, names)
        hit = cache.load(src.name, key, len(names))
        if hit is not None:
            return hit
    matrix = finalize_similarity(src.compute(names), names)
    if cache is not None and key is not None:
        cache.save(
            src.name, key, matrix, meta={"source": source, "fingerprint": fingerprint, "classes": names}
        )
    return matrix


def load_similarity(source: str, class_names: Sequence[str], **kwargs: Any) -> ClassSimilarity:
    """:func:`class_similarity` wrapped with its class names (``.top_k(k)``, ``.neighbours(name, k)``)."""
    names = list(class_names)
    return ClassSimilarity(class_similarity(source, names, **kwargs), names, source)
