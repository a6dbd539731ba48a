"""Similarity from a trained model: run it over labelled images, then reduce its outputs.

One mechanism serves every model source. ``collect_outputs`` is the model pass; a *reducer*
(``PrototypeReducer``, ``ConfusionReducer``: (logits, features, labels, C) -> [C, C]) turns the
outputs into a similarity; :func:`model_similarity` is the two together. Two sources feed it:

* ``RunSimilarity`` (``prototypes:RUN_DIR``, ``confusion:RUN_DIR``): loads a run's checkpoint and
  the dataset it was trained on, keys the cache by the checkpoint's sha256. Both read the
  **training split** by default: these matrices pick training negatives, so computing them on
  the test split leaks test labels into training. ``split=test`` (``confusion:RUN_DIR:split=test``)
  is allowed for analysis and warns.
* ``TeacherSimilarity`` (``teacher:prototypes``, ``teacher:confusion``, distillation only): the
  teacher module already loaded for the run, over the run's training set (in the ``context``).

Checkpoint and model code sit in ``scns.train`` (above this package), so they are imported lazily.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from scns.checkpoint import CheckpointError, file_digest, resolve_checkpoint_path
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


class Reducer(Protocol):
    """(logits [N, C], features [N, D], labels [N], C) -> float32 [C, C] similarity."""

    name: str

    def options(self) -> dict[str, Any]:
        """What changes the result (part of the cache key)."""
        ...

    def __call__(self, logits: Tensor, features: Tensor, labels: Tensor, num_classes: int) -> Tensor: ...


def model_similarity(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    transform: Callable[[Tensor], Tensor],
    reducer: Reducer,
    num_classes: int,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> Tensor:
    """``reducer(collect_outputs(model, images), labels)``: the one path of every model source.

    Args:
        model, images, transform, batch_size, device: as :func:`collect_outputs`.
        labels: int [N] class ids of ``images``.
        reducer: e.g. ``PrototypeReducer()`` or ``ConfusionReducer(mode="soft")``.
        num_classes: C.

    Returns:
        float32 [C, C] (not finalised).
    """
    logits, features = collect_outputs(model, images, transform, batch_size, device)
    return reducer(logits, features, torch.as_tensor(labels).cpu(), num_classes)


TEST_SPLIT_WARNING = (
    "{name}: computing the similarity on the test split; using it to pick training negatives "
    "leaks test labels into training (fine for analysis). Drop split=test to use the training split."
)


class RunSimilarity:
    """Base of the run-directory sources: subclasses set ``name`` and ``reducer``.

    Args:
        checkpoint: a run directory (its ``checkpoints/last.pt``) or a checkpoint file.
        data_dir: dataset folder; default the run's ``data.data_dir``, else ``$SCNS_DATA_DIR``.
        split: ``train`` (default) or ``test`` (warns: a test-label leak if used for training).
        batch_size: images per forward pass.
        device: where the model runs.
    """

    name = "run"
    default_split = "train"
    reducer: Reducer

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
        if self.split == "test":
            warnings.warn(TEST_SPLIT_WARNING.format(name=self.name), UserWarning, stacklevel=3)
        self.batch_size = int(batch_size)
        self.device = device
        self._path: Path | None = None

    def checkpoint_path(self) -> Path:
        """The checkpoint file (resolving a run directory)."""
        if self._path is None:
            try:
                self._path = resolve_checkpoint_path(self.checkpoint)
            except CheckpointError as err:
                raise SimilarityError(f"{self.name}: {err}") from None
        return self._path

    def fingerprint(self) -> dict[str, Any]:
        return {
            "checkpoint_sha256": file_digest(self.checkpoint_path()),
            "split": self.split,
            **self.reducer.options(),
        }

    def compute(self, class_names: list[str]) -> Tensor:
        from scns.models import load_trained_model

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
        dataset = str(data_cfg.get("dataset") or "")  # empty: _load_split says the checkpoint names none
        root = self.data_dir or data_cfg.get("data_dir") or os.environ.get("SCNS_DATA_DIR")
        data = _load_split(dataset, root, self.split)
        from scns.data import get_spec
        from scns.data.augment import BatchTransform

        transform = BatchTransform.from_spec(get_spec(dataset), train=False)
        return model_similarity(
            model,
            data.images,
            data.labels,
            transform,
            self.reducer,
            len(class_names),
            self.batch_size,
            self.device,
        )


class TeacherSimilarity:
    """A loaded model (the distillation teacher) over the run's training set, reduced by ``reducer``.

    Args:
        reducer: what to compute (see :class:`Reducer`).
        model: forward(x) -> (logits, features), e.g. the frozen teacher.
        images: uint8 [N, H, W, 3] training images; labels: int [N].
        transform: eval transform (uint8 batch on ``device`` -> float [B, 3, H, W]).
        checkpoint: the model's checkpoint file, for the cache key (None: never cached).
        batch_size, device: as :func:`collect_outputs`.
    """

    name = "teacher"

    def __init__(
        self,
        reducer: Reducer,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        transform: Callable[[Tensor], Tensor],
        checkpoint: str | Path | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
    ) -> None:
        self.reducer, self.model, self.images, self.labels = reducer, model, images, labels
        self.transform, self.checkpoint = transform, checkpoint
        self.batch_size, self.device = int(batch_size), device

    def fingerprint(self) -> dict[str, Any] | None:
        if self.checkpoint is None:
            return None
        try:
            path = resolve_checkpoint_path(self.checkpoint)
        except CheckpointError:
            return None
        return {
            "checkpoint_sha256": file_digest(path),
            "kind": self.reducer.name,
            "images_sha256": _tensor_digest(self.images),
            "labels_sha256": _tensor_digest(self.labels),
            **self.reducer.options(),
        }

    def compute(self, class_names: list[str]) -> Tensor:
        return model_similarity(
            self.model,
            self.images,
            self.labels,
            self.transform,
            self.reducer,
            len(class_names),
            self.batch_size,
            self.device,
        )


def _tensor_digest(t: Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


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
