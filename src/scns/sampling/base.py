"""The negative-sampler contract and a small base class with the shared plumbing."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class NegativeSampler(Protocol):
    """Draws negatives for a batch of anchors."""

    def sample(
        self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """index, labels: int64 [B] (anchor sample ids, anchor classes).

        Returns int64 [B, k] sample ids, never of the anchor's class, on ``labels``' device.
        """
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SamplerOptions:
    """A sampler's own options; a sampler subclasses it with its fields and checks them in
    ``__post_init__`` (raising ``ValueError`` with what is wrong and what is allowed).

    Field names that also exist on :class:`scns.config.ContrastConfig` take their value from there
    (e.g. ``top_k``); any field can be set with ``contrast.sampler_options.<sampler>.<field>``.
    """

    def check_classes(self, num_classes: int) -> None:
        """Checks that need the dataset's number of classes C (before any data loads)."""


class SamplerBase:
    """Shared plumbing: argument checks, no-grad sampling, empty state, no refresh.

    Subclasses implement ``_sample(index, labels, k, generator) -> [B, k]``, ``_log_prob`` and
    ``describe()``; samplers holding tables override ``state_dict``/``load_state_dict`` and ``refresh``.

    A sampler is one module: it registers itself in ``SAMPLERS``, declares its options dataclass
    (``Options``), what it needs from the run (``needs_similarity``: a [C, C] class similarity;
    ``refreshes_from_features``: a table rebuilt from features [N, D]) and how it is built from its
    options (:meth:`from_options`). Nothing above the sampler names it.
    """

    Options: ClassVar[type[SamplerOptions]] = SamplerOptions
    needs_similarity: ClassVar[bool] = False
    refreshes_from_features: ClassVar[bool] = False

    @classmethod
    def from_options(
        cls,
        labels: Tensor,
        options: SamplerOptions,
        *,
        similarity: Tensor | None = None,
        build: Callable[[str], SamplerBase] | None = None,
    ) -> SamplerBase:
        """Build over training labels [N] from validated options, with a [C, C] class similarity
        (when ``needs_similarity``) and ``build(name)``, which builds another configured sampler
        (for samplers made of others, such as a mixture)."""
        factory: Callable[..., SamplerBase] = cls  # every sampler takes (labels, **its options)
        return factory(labels, **dataclasses.asdict(options))

    def log_prob(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor:
        """log q(negative | anchor) of one draw, for any ids (not only this sampler's own draws).

        Args:
            index, labels: int64 [B] anchor ids and classes. neg_idx: int64 [B, K] sample ids.

        Returns:
            float32 [B, K]: the probability that one draw of this sampler for the anchor returns
            that id (``-inf`` for ids it never draws). ``K * exp(log_prob)`` is the expected number
            of times an id appears among K draws, with or without replacement.
        """
        with torch.no_grad():
            return self._log_prob(index.long(), labels.long(), neg_idx.long()).float()

    def _log_prob(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not report the probability of its draws")

    def uses_features(self) -> bool:
        """Whether this sampler (or one of its parts) draws from a table built by :meth:`refresh`
        from features, and so cannot draw before its first refresh."""
        return self.refreshes_from_features

    def set_epoch(self, epoch: int) -> None:
        """Called before every epoch (0-based) for samplers whose proposal follows a schedule."""

    def set_similarity(self, similarity: Tensor) -> None:
        """Rebuild class-similarity tables from a new [C, C] similarity (an adaptive source, each
        epoch); samplers that do not draw by class similarity ignore it."""

    def sample(
        self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """See :class:`NegativeSampler`. Negatives are drawn with replacement."""
        check_sample_args(index, labels, k)
        with torch.no_grad():
            return self._sample(index.long(), labels.long(), operator.index(k), generator)

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} is stateless but got state keys {sorted(state)}")

    def should_refresh(self, epoch: int) -> bool:
        """Whether the engine should call :meth:`refresh` before ``epoch`` (0-based)."""
        return False

    def refresh(self, features: Tensor) -> None:
        """Rebuild any feature-dependent table from features [N, D]; a no-op here."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def check_sample_args(index: Tensor, labels: Tensor, k: int) -> None:
    """Raise a clear error for malformed ``sample`` arguments."""
    if index.dim() != 1 or labels.dim() != 1 or index.shape != labels.shape:
        raise ValueError(
            f"index and labels must both be [B], got {tuple(index.shape)} and {tuple(labels.shape)}"
        )
    if index.dtype.is_floating_point or labels.dtype.is_floating_point:
        raise ValueError(f"index and labels must be integer tensors, got {index.dtype} and {labels.dtype}")
    try:
        k_int = operator.index(k)
    except TypeError:
        k_int = None
    if isinstance(k, bool) or k_int is None or k_int < 1:
        raise ValueError(f"k (negatives per anchor) must be a positive int, got {k!r}")
