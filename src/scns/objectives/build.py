"""Build an objective from the config: the only place where method names turn into parts."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from scns.config import Config, ConfigError, ContrastConfig
from scns.memory import BANK_DTYPES
from scns.objectives.base import Objective
from scns.objectives.contrast import BankContrast, Embed
from scns.objectives.distill import DEFAULT_WEIGHTS, METHODS, DistillObjective
from scns.objectives.negatives import DynamicSimilarity, NegativeSource
from scns.objectives.supervised import SupervisedObjective
from scns.sampling import NEGATIVE_TRANSFORMS, LatentMixup, configured

OBJECTIVES = ("supervised", "distill")


SUPERVISED_DEFAULTS: dict[str, Any] = {"weight": 0.5, "loss": "infonce", "positive": "class"}
DISTILL_DEFAULTS: dict[str, Any] = {
    "loss": "nce",
    "positive": "self",
}  # the CRD weight is DEFAULT_WEIGHTS[method][2]


def contrast_weight(config: Config) -> float:
    """Weight of the contrastive term; 0 when the run has none.

    Supervised: on when ``contrast.sampler`` is set (default weight 0.5). Distillation: on for the
    CRD methods (default weight 0.8, the CRD benchmark's).
    """
    weight = config.contrast.weight
    if config.train.objective == "distill":
        if not config.distill.method.startswith("crd"):
            return 0.0
        return DEFAULT_WEIGHTS[config.distill.method][2] if weight is None else weight
    if config.contrast.sampler is None:
        return 0.0
    return SUPERVISED_DEFAULTS["weight"] if weight is None else weight


def contrast_option(config: Config, name: str) -> str:
    """``contrast.loss`` or ``contrast.positive``, with the setting's default when unset."""
    value = getattr(config.contrast, name)
    if value is not None:
        return value
    return (DISTILL_DEFAULTS if config.train.objective == "distill" else SUPERVISED_DEFAULTS)[name]


def resolved_defaults(config: Config) -> dict[str, Any]:
    """The setting's value of every option the config leaves ``None`` that this run uses, as dotted
    overrides: the contrastive term's weight, loss, positive and logged top-k share when the term is
    on, and the loss weights of a distillation method. ``None`` stays where an option does not apply
    (the term is off, or no share is logged). The config must be valid (``validate_config``).

    Filling these in before a run starts makes its ``config.yaml`` record the values it ran with;
    :func:`build_objective` reads the same functions, so a config built in code needs no filling.
    """
    filled: dict[str, Any] = {}
    if config.train.objective == "distill":
        ce_w, kd_w, _ = DEFAULT_WEIGHTS[config.distill.method]
        if config.distill.ce_weight is None:
            filled["distill.ce_weight"] = ce_w
        if config.distill.kd_weight is None:
            filled["distill.kd_weight"] = kd_w
    weight = contrast_weight(config)
    if weight > 0:
        contrast = config.contrast
        if contrast.weight is None:
            filled["contrast.weight"] = weight
        for name in ("loss", "positive"):
            if getattr(contrast, name) is None:
                filled[f"contrast.{name}"] = contrast_option(config, name)
        if contrast.sampler is None:
            filled["contrast.sampler"] = configured.configured_name(contrast)
        share = share_top_k(contrast)
        if contrast.share_top_k is None and share is not None:
            filled["contrast.share_top_k"] = share
    return filled


def needs_similarity(contrast: ContrastConfig) -> bool:
    """Whether the configured sampler (or a mixture component) draws by class similarity."""
    return configured.needs_similarity(contrast)


def needs_features(contrast: ContrastConfig) -> bool:
    """Whether the configured sampler (or a mixture component) builds a table from features."""
    return configured.refreshes_from_features(contrast)


def build_negatives(
    contrast: ContrastConfig,
    labels: Tensor,
    similarity: Tensor | None,
    dynamic_similarity: DynamicSimilarity | None = None,
) -> NegativeSource:
    """The configured sampler over training labels [N], wrapped with its fallback and statistics.

    ``similarity``: the [C, C] class similarity (with a ``dynamic_similarity``, its value before
    the bank is known: the static part, or None for an all-tied start).
    """
    if similarity is None and dynamic_similarity is not None:
        c = int(labels.max()) + 1
        similarity = torch.zeros(c, c, device=labels.device)  # all tied: uniform over other classes
    sampler = configured.build_configured(contrast, labels, similarity)
    return NegativeSource(
        sampler,
        labels,
        contrast.negatives,
        similarity=similarity,
        share_top_k=share_top_k(
            contrast, has_similarity=similarity is not None or dynamic_similarity is not None
        ),
        log_negatives=contrast.log_negatives,
        proposal_beta=contrast.proposal_beta,
        dynamic_similarity=dynamic_similarity,
    )


def share_top_k(contrast: ContrastConfig, has_similarity: bool | None = None) -> int | None:
    """How many most similar classes the logged top-k share counts (None: no share is logged).

    ``has_similarity``: whether a class similarity is at hand (default: a source is named in
    ``contrast.similarity``; a caller holding a matrix, such as the Python API, says True).
    """
    if not (bool(contrast.similarity) if has_similarity is None else has_similarity):
        return None
    if contrast.share_top_k is not None:
        return contrast.share_top_k
    return None if needs_features(contrast) else contrast.top_k


def build_mixup(contrast: ContrastConfig) -> LatentMixup | None:
    """The configured latent mixup (None when ``contrast.latent_mixup`` is 0); invalid options raise
    :class:`ConfigError` (the validation before any data loads builds it too)."""
    if contrast.latent_mixup <= 0:
        return None
    try:
        return NEGATIVE_TRANSFORMS.build(
            "latent_mixup",
            num=contrast.latent_mixup,
            alpha=contrast.mixup_alpha,
            mode=contrast.mixup_mode,
            hardest=contrast.mixup_hardest,
            lam_dist=contrast.mixup_lam,
            lam_max=contrast.mixup_lam_max,
            cap_above_positive=contrast.mixup_cap,
        )
    except ValueError as err:
        raise ConfigError(f"latent mixup: {err}") from None


def build_contrast(contrast: ContrastConfig, n: int, loss: str) -> BankContrast:
    mixup = build_mixup(contrast)
    return BankContrast(
        n,
        contrast.embed_dim,
        loss=loss,
        temperature=contrast.temperature,
        nce_z=contrast.nce_z,
        bank_momentum=contrast.bank_momentum,
        bank_dtype=BANK_DTYPES[contrast.bank_dtype],
        mixup=mixup,
    )


def build_objective(
    config: Config,
    model: nn.Module,
    train_labels: Tensor,
    *,
    teacher: nn.Module | None = None,
    similarity: Tensor | None = None,
    sample_features: Tensor | None = None,
    dynamic_similarity: DynamicSimilarity | None = None,
) -> Objective:
    """The objective named by ``config.train.objective``.

    Args:
        model: the trained network (the student in distillation).
        train_labels: int64 [N] training labels on the training device.
        teacher: frozen teacher (distillation only).
        similarity: [C, C] class similarity for class-level sampling (and the top-k share statistic).
        sample_features: [N, F] features to build sample-level tables from once and keep (the
            legacy ``contrast.knn_source=teacher_features`` of distillation); without them tables
            are rebuilt from the memory bank every ``refresh_every`` epochs.
        dynamic_similarity: an adaptive class similarity (``bank`` specs), recomputed from the
            memory bank at every epoch start.
    """
    contrast = config.contrast
    n = int(train_labels.numel())
    weight = contrast_weight(config)
    if config.train.objective == "supervised":
        if weight <= 0:
            return SupervisedObjective(model, label_smoothing=config.optim.label_smoothing)
        negatives = build_negatives(contrast, train_labels, similarity, dynamic_similarity)
        if sample_features is not None and negatives.needs_refresh(0):
            negatives.refresh(sample_features)
            negatives.refresh_from_bank = False
        return SupervisedObjective(
            model,
            label_smoothing=config.optim.label_smoothing,
            contrast=build_contrast(contrast, n, contrast_option(config, "loss")),
            negatives=negatives,
            embed=Embed(_feature_dim(model), contrast.embed_dim),
            weight=weight,
            positive=contrast_option(config, "positive"),
        )
    if config.train.objective == "distill":
        if teacher is None:
            raise ConfigError("the distill objective needs a teacher (distill.teacher=RUN_DIR or checkpoint)")
        method = config.distill.method
        if method not in METHODS:
            raise ConfigError(f"unknown distill.method '{method}'. Valid choices: {', '.join(METHODS)}")
        ce_w, kd_w, _ = DEFAULT_WEIGHTS[method]
        ce_w = ce_w if config.distill.ce_weight is None else config.distill.ce_weight
        kd_w = kd_w if config.distill.kd_weight is None else config.distill.kd_weight
        crd_w = weight
        parts: dict = {}
        if crd_w:
            negatives = build_negatives(contrast, train_labels, similarity, dynamic_similarity)
            if sample_features is not None and negatives.needs_refresh(0):
                negatives.refresh(sample_features)  # legacy: one table from raw teacher features
                negatives.refresh_from_bank = False
            parts = {
                "contrast_s": build_contrast(contrast, n, contrast_option(config, "loss")),
                "contrast_t": build_contrast(contrast, n, contrast_option(config, "loss")),
                "embed_s": Embed(_feature_dim(model), contrast.embed_dim),
                "embed_t": Embed(_feature_dim(teacher), contrast.embed_dim),
                "negatives": negatives,
            }
        return DistillObjective(
            model, teacher, ce_w, kd_w, crd_w, kd_temperature=config.distill.kd_temperature, **parts
        )
    raise ConfigError(
        f"unknown train.objective '{config.train.objective}'. Valid choices: {', '.join(OBJECTIVES)}"
    )


def _feature_dim(net: nn.Module) -> int:
    """The pooled feature size F a zoo model (or a FrozenNet around one) declares as ``feature_dim``."""
    return cast(int, net.feature_dim)
