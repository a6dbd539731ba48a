"""The negative-sampler contract and a small base class with the shared plumbing."""

from __future__ import annotations

import operator
from typing import Any, Protocol, runtime_checkable

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


class SamplerBase:
    """Shared plumbing: argument checks, no-grad sampling, empty state, no refresh.

    Subclasses implement ``_sample(index, labels, k, generator) -> [B, k]`` and ``describe()``;
    samplers holding tables override ``state_dict``/``load_state_dict`` and ``refresh``.
    """

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
