"""The one contract every zoo model keeps: ``forward(x) -> (logits, features)``."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ZooModel(nn.Module):
    """Base class of every model in the zoo.

    A subclass builds its body, defines ``self.fc = nn.Linear(feature_dim, num_classes)`` and
    implements :meth:`forward_features`. ``forward`` is shared:

    ``x`` float [B, 3, H, W] (H, W >= ``min_input_size``) -> ``(logits [B, num_classes], features
    [B, feature_dim])``, where ``features`` is the globally average-pooled penultimate vector, i.e.
    exactly what ``self.fc`` sees (``logits == self.fc(features)``).

    Attributes:
        feature_dim: size of the pooled feature vector.
        num_classes: number of logits.
        arch: the registry name the model was built under (set by ``create_model``).
    """

    min_input_size: int = 8
    fc: nn.Linear

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.arch = type(self).__name__

    def forward_features(self, x: Tensor) -> Tensor:
        """x [B, 3, H, W] -> pooled features [B, feature_dim]."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x float [B, 3, H, W] -> (logits [B, num_classes], features [B, feature_dim])."""
        self._check_input(x)
        features = self.forward_features(x)
        return self.fc(features), features

    def _check_input(self, x: Tensor) -> None:
        # Shape/dtype metadata only: no host-device sync.
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"{self.arch} expects images as a float tensor [B, 3, H, W]; got shape {tuple(x.shape)}. "
                "Add a batch dimension with x.unsqueeze(0) or move channels first with x.permute(0, 3, 1, 2)."
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{self.arch} expects a floating-point input; got {x.dtype}. "
                "Convert and normalise uint8 images first, e.g. x.float() / 255 then mean/std."
            )
        if min(x.shape[2], x.shape[3]) < self.min_input_size:
            raise ValueError(
                f"{self.arch} needs images of at least {self.min_input_size}x{self.min_input_size} px; "
                f"got {x.shape[2]}x{x.shape[3]}. Resize or pad the inputs."
            )


def global_avg_pool(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, C]: mean over all spatial positions (adaptive pooling to 1x1)."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
