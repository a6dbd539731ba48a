"""Similarity from a trained model: run it over a dataset split, then reduce its outputs.

``collect_outputs`` is the model pass; ``RunSimilarity`` is the shared part of the ``prototypes``
and ``confusion`` sources: it finds the checkpoint, keys the cache by the checkpoint's sha256,
loads the model and the dataset the run was trained on, and hands the outputs to a reducer.
Checkpoint and model code sit in ``scns.train`` (above this package), so they are imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scns.similarity.base import SimilarityError

SPLITS = ("train", "test")


@torch.no_grad()
def collect_outputs(
    model: nn.Module,
    images: Tensor,
    transform: Callable[[Tensor], Tensor],
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, Tensor]:
    """Run ``model`` (in eval mode) over ``images`` in batches.

    Args:
        model: forward(x [B, 3, H, W]) -> (logits [B, C], features [B, D]).
        images: uint8 [N, H, W, 3], on any device (moved batch by batch).
        transform: uint8 [B, H, W, 3] on ``device`` -> float [B, 3, H, W] (eval normalisation,
            e.g. ``BatchTransform.from_spec(spec, train=False)``).
        batch_size: images per forward pass.
        device: where the model runs.

    Returns:
        (logits float32 [N, C], features float32 [N, D]) on the CPU.
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise SimilarityError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {list(images.shape)}")
    if batch_size < 1:
        raise SimilarityError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    logits, features = [], []
    try:
        for start in range(0, images.shape[0], batch_size):
            x = transform(images[start : start + batch_size].to(device, non_blocking=True))
            out = model(x)
            if not isinstance(out, tuple | list) or len(out) != 2:
                raise SimilarityError("the model must return (logits, features) from forward(x)")
            logits.append(out[0].float().cpu())
            features.append(out[1].flatten(1).float().cpu())
    finally:
        model.train(was_training)
    if not logits:
        raise SimilarityError("no images to run the model on")
    return torch.cat(logits), torch.cat(features)


class RunSimilarity:
    """Base of the model sources: subclasses set ``name``, ``default_split`` and ``from_outputs``.

    Args:
        checkpoint: a run directory (its ``checkpoints/last.pt``) or a checkpoint file.
        data_dir: dataset folder; default the run's ``data.data_dir``, else ``$SCNS_DATA_DIR``.
        split: ``train`` or ``test`` (default ``default_split``).
        batch_size: images per forward pass.
        device: where the model runs.
    """

    name = "run"
    default_split = "train"

    def __init__(
        self,
        checkpoint: str | Path,
        data_dir: str | Path | None = None,
        split: str | None = None,
        batch_size: int = 256,
        device: str = "cpu",
    ) -> None:
        self.checkpoint = Path(checkpoint).expanduser()
        self.data_dir = data_dir
        self.split = split or self.default_split
        if self.split not in SPLITS:
            raise SimilarityError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        self.batch_size = int(batch_size)
        self.device = device
        self._path: Path | None = None

    def checkpoint_path(self) -> Path:
        """The checkpoint file (resolving a run directory)."""
        if self._path is None:
            from scns.train.checkpoint import CheckpointError, resolve_checkpoint_path

            try:
                self._path = resolve_checkpoint_path(self.checkpoint)
            except CheckpointError as err:
                raise SimilarityError(f"{self.name}: {err}") from None
        return self._path

    def fingerprint(self) -> dict[str, Any]:
        from scns.train.checkpoint import file_digest

        return {"checkpoint_sha256": file_digest(self.checkpoint_path()), "split": self.split}

    def from_outputs(self, logits: Tensor, features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
        """Reduce the model's outputs over the split to a [C, C] similarity."""
        raise NotImplementedError

    def compute(self, class_names: list[str]) -> Tensor:
        from scns.train.checkpoint import CheckpointError, load_trained_model

        try:
            model, state = load_trained_model(self.checkpoint_path(), self.device)
        except CheckpointError as err:
            raise SimilarityError(f"{self.name}: {err}") from None
        classes = list(state.get("classes") or [])
        if classes != list(class_names):
            raise SimilarityError(
                f"{self.name}: the run in {self.checkpoint} was trained on {len(classes)} classes "
                f"({', '.join(classes[:4])}, ...), not on the {len(class_names)} requested "
                f"({', '.join(class_names[:4])}, ...); pick the matching --dataset"
            )
        data_cfg = (state.get("config") or {}).get("data") or {}
        dataset = data_cfg.get("dataset")
        root = self.data_dir or data_cfg.get("data_dir") or os.environ.get("SCNS_DATA_DIR")
        data = _load_split(dataset, root, self.split)
        from scns.data import get_spec
        from scns.data.augment import BatchTransform

        transform = BatchTransform.from_spec(get_spec(dataset), train=False)
        logits, features = collect_outputs(model, data.images, transform, self.batch_size, self.device)
        return self.from_outputs(logits, features, data.labels, len(class_names))


def _load_split(dataset: str | None, root: str | Path | None, split: str) -> Any:
    from scns.data import DatasetError, load_dataset

    if not dataset:
        raise SimilarityError(
            "the checkpoint's config names no data.dataset; it was not written by `scns train`"
        )
    try:
        return load_dataset(dataset, root, split)
    except (DatasetError, ValueError) as err:
        raise SimilarityError(f"cannot load {dataset} ({split}) for the model source: {err}") from None
