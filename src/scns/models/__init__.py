"""scns.models: the CRD benchmark's model zoo behind one contract.

``create_model(name, num_classes)`` returns a model whose ``forward(x [B, 3, H, W])`` gives
``(logits [B, num_classes], features [B, model.feature_dim])``; ``list_models()`` names them all.
"""

from scns.models import mobilenetv2, resnet, resnet_imagenet, shufflenetv1, shufflenetv2, vgg, wrn  # noqa: F401
from scns.models.base import ZooModel
from scns.models.zoo import (
    MODELS,
    create_model,
    list_models,
    load_trained_model,
    model_summary,
    register_model,
)

__all__ = [
    "MODELS",
    "ZooModel",
    "create_model",
    "list_models",
    "load_trained_model",
    "model_summary",
    "register_model",
]
