"""scns.models: the CRD benchmark's model zoo behind one contract.

``create_model(name, num_classes)`` returns a model whose ``forward(x [B, 3, H, W])`` gives
``(logits [B, num_classes], features [B, model.feature_dim])``; ``list_models()`` names them all.
"""

from scns.models.base import ZooModel
from scns.models.zoo import (
    MODELS,
    create_model,
    list_models,
    load_trained_model,
    model_summary,
    register_model,
)
from scns.registry import import_submodules

__all__ = [
    "MODELS",
    "ZooModel",
    "create_model",
    "list_models",
    "load_trained_model",
    "model_summary",
    "register_model",
]

# every model family registers itself: a new family is one file in this package
import_submodules(__name__, __path__)
