"""The model registry: ``register_model``, ``create_model``, ``list_models``, ``model_summary``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scns.checkpoint import CheckpointError, load_checkpoint
from scns.models.base import ZooModel
from scns.registry import Registry

MODELS: Registry[ZooModel] = Registry("model")

Factory = Callable[..., ZooModel]


def register_model(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(num_classes, **options) -> ZooModel`` as ``name``.

    The registered builder validates ``num_classes`` and the option names, and stamps
    ``model.arch = name`` so a model always knows the name it was built under.
    """

    def decorator(factory: Factory) -> Factory:
        options = [p for p in inspect.signature(factory).parameters if p != "num_classes"]

        @functools.wraps(factory)
        def build(num_classes: int, **kwargs: Any) -> ZooModel:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(f"model '{name}': num_classes must be a positive int, got {num_classes!r}")
            unknown = sorted(set(kwargs) - set(options))
            if unknown:
                valid = ", ".join(options) if options else "none"
                raise TypeError(f"model '{name}' got unknown option(s) {unknown}; valid options: {valid}")
            model = factory(num_classes=num_classes, **kwargs)
            model.arch = name
            return model

        MODELS.register(name)(build)
        return build

    return decorator


def create_model(name: str, num_classes: int, **kwargs: Any) -> ZooModel:
    """Build the zoo model ``name`` with ``num_classes`` logits.

    ``forward(x [B, 3, H, W]) -> (logits [B, num_classes], features [B, model.feature_dim])``.
    Raises ``scns.registry.UnknownNameError`` (listing valid names) for an unknown ``name``.
    """
    return MODELS.build(name, num_classes=num_classes, **kwargs)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return MODELS.names()


def model_summary(name: str, num_classes: int, **kwargs: Any) -> dict[str, int]:
    """``{"params": trainable parameter count, "feature_dim": pooled feature size}`` of ``name``.

    Built on the meta device: no memory is allocated and no weights are initialised for real.
    """
    with torch.device("meta"):
        model = create_model(name, num_classes, **kwargs)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "feature_dim": model.feature_dim}


def load_trained_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[ZooModel, dict[str, Any]]:
    """Rebuild the trained model stored in a checkpoint (file or run directory), in eval mode.

    Returns ``(model, state)``; ``state`` is the whole checkpoint dict (``config``, ``classes``,
    ``num_classes``, ``epoch``, ``path`` ...), so callers can find the dataset it was trained on.
    """
    state = load_checkpoint(path, map_location=device)
    try:
        arch = state["config"]["model"]["name"]
        num_classes = int(state["num_classes"])
        weights = state["model"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {state['path']} lacks {err}; it was not written by `scns train`"
        ) from None
    model = create_model(arch, num_classes=num_classes)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {state['path']} does not fit model '{arch}': {err}") from None
    return model.to(device).eval(), state
