"""Turn a config into a ready objective: load the teacher, resolve class similarity, precompute features.

This is the train-level glue between the config and :func:`scns.objectives.build_objective`; the
objectives themselves never load files.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from scns.config import Config, ConfigError
from scns.data.augment import BatchTransform
from scns.data.datasets import get_spec
from scns.data.imageset import ImageSet
from scns.models.frozen import freeze_for_inference
from scns.objectives import Objective, build_objective
from scns.objectives.build import contrast_weight, needs_features, needs_similarity
from scns.objectives.negatives import DynamicSimilarity
from scns.train.checkpoint import CheckpointError, load_trained_model
from scns.train.schedule import steps_per_epoch


def load_teacher(
    config: Config, train_set: ImageSet, device: torch.device
) -> tuple[nn.Module, dict[str, Any]]:
    """Load ``distill.teacher`` and check it was trained for these classes (and the expected architecture)."""
    path = config.distill.teacher
    if not path:
        raise ConfigError(
            "distillation needs a teacher: --teacher RUN_DIR (a run of `scns train`) or a checkpoint"
        )
    teacher, state = load_trained_model(path, device)
    arch = state["config"]["model"]["name"]
    expected = config.distill.teacher_model
    if expected and expected != arch:
        raise CheckpointError(
            f"teacher checkpoint {state['path']} holds a '{arch}', but distill.teacher_model is '{expected}'"
        )
    if state["num_classes"] != len(train_set.classes):
        raise CheckpointError(
            f"teacher checkpoint {state['path']} was trained for {state['num_classes']} classes "
            f"({state['config']['data']['dataset']}), but {config.data.dataset} has {len(train_set.classes)}"
        )
    if list(state.get("classes", train_set.classes)) != list(train_set.classes):
        raise CheckpointError(
            f"teacher checkpoint {state['path']} was trained on other classes than {config.data.dataset}"
        )
    return teacher, state


def similarity_context(train_set: ImageSet, config: Config, device: torch.device) -> dict[str, Any]:
    """What similarity sources may read: the training data, the device, the data folder."""
    from scns.similarity import imageset_context

    return {**imageset_context(train_set), "device": str(device), "data_dir": config.data.data_dir}


def resolve_similarity(
    spec: str, train_set: ImageSet, config: Config, device: torch.device, teacher: nn.Module | None = None
) -> Tensor:
    """The [C, C] class similarity named by ``spec`` (a ``scns similarity`` source or composite).

    ``teacher:prototypes`` / ``teacher:confusion`` (distillation only) run ``teacher`` over
    ``train_set``; it is loaded from ``distill.teacher`` when not given.
    """
    from scns.similarity import class_similarity

    context = {**similarity_context(train_set, config, device)}
    context.update(teacher_similarity_context(spec, train_set, config, device, teacher))
    return class_similarity(spec, list(train_set.classes), context=context).to(device)


def teacher_similarity_context(
    spec: str, train_set: ImageSet, config: Config, device: torch.device, teacher: nn.Module | None = None
) -> dict[str, Any]:
    """Context entries of the ``teacher:*`` similarity sources (empty when ``spec`` names none)."""
    from scns.similarity.teacher import teacher_context, uses_teacher

    if not uses_teacher(spec):
        return {}
    if config.train.objective != "distill":
        raise ConfigError(
            f"--similarity {spec}: teacher:prototypes / teacher:confusion need a distillation "
            "(scns distill --teacher RUN_DIR); in scns train use prototypes:RUN_DIR or confusion:RUN_DIR"
        )
    if teacher is None:
        teacher, _ = load_teacher(config, train_set, device)
    transform = BatchTransform.from_spec(get_spec(config.data.dataset), train=False)
    return teacher_context(teacher, train_set.images, train_set.labels, transform, config.distill.teacher)


def resolve_contrast_similarity(
    spec_text: str,
    train_set: ImageSet,
    config: Config,
    device: torch.device,
    labels: Tensor,
    teacher: nn.Module | None = None,
) -> tuple[Tensor | None, DynamicSimilarity | None]:
    """The run's class similarity: ``(matrix, None)`` for a static spec; for one with terms known only
    during training (``bank``), ``(its static part or None, the DynamicSimilarity that completes it)``."""
    from scns.similarity.spec import SimilaritySpec

    spec = SimilaritySpec.parse(spec_text)
    if not spec.is_dynamic:
        return resolve_similarity(spec_text, train_set, config, device, teacher), None
    context = {
        **similarity_context(train_set, config, device),
        **teacher_similarity_context(spec_text, train_set, config, device, teacher),
    }
    dynamic = DynamicSimilarity.from_spec(spec, list(train_set.classes), labels.to(device), context)
    return dynamic.static, dynamic


def make_objective(config: Config, model: nn.Module, train_set: ImageSet, device: torch.device) -> Objective:
    """The engine's objective factory: everything ``build_objective`` needs, resolved from the config."""
    contrast = config.contrast
    distill = config.train.objective == "distill"
    contrastive = contrast_weight(config) > 0
    teacher: nn.Module | None = None
    sample_features = None
    if distill:
        teacher, _ = load_teacher(config, train_set, device)
        # every training step calls the teacher once (the bank prefill adds one pass; not counted)
        batches = max(1, len(train_set) // config.data.batch_size)
        steps = config.train.epochs * steps_per_epoch(batches, config.train.max_steps_per_epoch)
        teacher = freeze_for_inference(teacher, device, config.distill.teacher_mode, expected_calls=steps)
    labels = train_set.labels.to(device)
    similarity, dynamic = None, None
    if contrastive and contrast.similarity:
        similarity, dynamic = resolve_contrast_similarity(
            contrast.similarity, train_set, config, device, labels, teacher
        )
    elif contrastive and needs_similarity(contrast):
        raise ConfigError(
            "this sampler needs contrast.similarity (--similarity glove|wordnet|text|hierarchy|bank|prototypes:RUN_DIR)"
        )
    if (
        teacher is not None
        and contrastive
        and needs_features(contrast)
        and contrast.knn_source == "teacher_features"
    ):
        from scns.similarity import collect_outputs

        transform = BatchTransform.from_spec(get_spec(config.data.dataset), train=False)
        _, sample_features = collect_outputs(teacher, train_set.images, transform, device=device)
        sample_features = sample_features.to(device)
    return build_objective(
        config,
        model,
        labels,
        teacher=teacher,
        similarity=similarity,
        sample_features=sample_features,
        dynamic_similarity=dynamic,
    )
