"""scns: semantically conditioned negative sampling for contrastive learning and distillation."""

__version__ = "0.1.0"
