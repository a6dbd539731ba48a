"""Build an objective from the config: the only place where method names turn into parts."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from scns.config import Config, ConfigError, ContrastConfig
from scns.memory import BANK_DTYPES
from scns.objectives.base import Objective
from scns.objectives.contrast import BankContrast, Embed
from scns.objectives.distill import DEFAULT_WEIGHTS, METHODS, DistillObjective
from scns.objectives.negatives import NegativeSource
from scns.objectives.supervised import SupervisedObjective
from scns.sampling import NEGATIVE_TRANSFORMS, build_sampler

OBJECTIVES = ("supervised", "distill")


SUPERVISED_DEFAULTS = {"weight": 0.5, "loss": "infonce", "positive": "class"}
DISTILL_DEFAULTS = {"loss": "nce", "positive": "self"}  # the CRD weight is DEFAULT_WEIGHTS[method][2]


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


def sampler_name(contrast: ContrastConfig) -> str:
    """The configured sampler, uniform when none is named."""
    return contrast.sampler or "uniform"


def sampler_names(contrast: ContrastConfig) -> list[str]:
    """The sampler names a config uses (a mixture's components, or the one sampler)."""
    if sampler_name(contrast) == "mixture":
        return [part.split(":", 1)[0] for part in contrast.mixture]
    return [sampler_name(contrast)]


def needs_similarity(contrast: ContrastConfig) -> bool:
    return "class_topk" in sampler_names(contrast)


def needs_features(contrast: ContrastConfig) -> bool:
    return "sample_topk" in sampler_names(contrast)


def _sampler_options(name: str, contrast: ContrastConfig, similarity: Tensor | None) -> dict:
    if name == "class_topk":
        if similarity is None:
            raise ConfigError(
                "sampler class_topk needs contrast.similarity (e.g. glove, wordnet, prototypes:RUN_DIR)"
            )
        return {
            "similarity": similarity,
            "top_k": contrast.top_k,
            "weighting": contrast.weighting,
            "temperature": contrast.class_temperature,
        }
    if name == "sample_topk":
        return {
            "top_k": contrast.top_k,
            "refresh_every": contrast.refresh_every,
            "backend": contrast.knn_backend,
            "index": contrast.knn_index,
            "nprobe": contrast.knn_nprobe,
        }
    return {}


def build_negatives(contrast: ContrastConfig, labels: Tensor, similarity: Tensor | None) -> NegativeSource:
    """The configured sampler over training labels [N], wrapped with its fallback and statistics."""
    if sampler_name(contrast) == "mixture":
        components = []
        for part in contrast.mixture:
            name, _, fraction = part.partition(":")
            try:
                share = float(fraction)
            except ValueError:
                raise ConfigError(
                    f"contrast.mixture part '{part}' must look like name:fraction, e.g. uniform:0.5"
                ) from None
            components.append((name, share, _sampler_options(name, contrast, similarity)))
        sampler = build_sampler("mixture", labels, components=components)
    else:
        name = sampler_name(contrast)
        sampler = build_sampler(name, labels, **_sampler_options(name, contrast, similarity))
    share_k = share_top_k(contrast)
    mask = None if share_k is None else topk_mask(similarity, share_k)
    return NegativeSource(sampler, labels, contrast.negatives, mask, contrast.log_negatives)


def share_top_k(contrast: ContrastConfig) -> int | None:
    """How many most similar classes the logged top-k share counts (None: no share is logged)."""
    if contrast.share_top_k is not None:
        return contrast.share_top_k
    return None if needs_features(contrast) else contrast.top_k


def topk_mask(similarity: Tensor | None, k: int) -> Tensor | None:
    """bool [C, C]: row c marks the k classes most similar to c (None without a similarity).

    Uses the same top-k as the class-level sampler (ties broken by the lower class id).
    """
    from scns.similarity import top_k

    if similarity is None:
        return None
    c = similarity.shape[0]
    mask = torch.zeros(c, c, dtype=torch.bool, device=similarity.device)
    mask.scatter_(1, top_k(similarity, min(k, c - 1)), True)
    return mask


def build_contrast(contrast: ContrastConfig, n: int, loss: str) -> BankContrast:
    mixup = None
    if contrast.latent_mixup > 0:
        mixup = NEGATIVE_TRANSFORMS.build(
            "latent_mixup",
            num=contrast.latent_mixup,
            alpha=contrast.mixup_alpha,
            mode=contrast.mixup_mode,
            hardest=contrast.mixup_hardest,
        )
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
) -> Objective:
    """The objective named by ``config.train.objective``.

    Args:
        model: the trained network (the student in distillation).
        train_labels: int64 [N] training labels on the training device.
        teacher: frozen teacher (distillation only).
        similarity: [C, C] class similarity for class-level sampling (and the top-k share statistic).
        sample_features: [N, F] features to build sample-level tables from once (the teacher's in
            distillation); without them the supervised setting refreshes tables from its bank.
    """
    contrast = config.contrast
    n = int(train_labels.numel())
    weight = contrast_weight(config)
    if config.train.objective == "supervised":
        if weight <= 0:
            return SupervisedObjective(model, label_smoothing=config.optim.label_smoothing)
        negatives = build_negatives(contrast, train_labels, similarity)
        if sample_features is not None and negatives.needs_refresh(0):
            negatives.refresh(sample_features)
        return SupervisedObjective(
            model,
            label_smoothing=config.optim.label_smoothing,
            contrast=build_contrast(contrast, n, contrast_option(config, "loss")),
            negatives=negatives,
            embed=Embed(model.feature_dim, contrast.embed_dim),
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
            negatives = build_negatives(contrast, train_labels, similarity)
            if negatives.needs_refresh(0):
                if sample_features is None:
                    raise ConfigError(
                        "sample_topk in distillation needs the teacher's features to build its table"
                    )
                negatives.refresh(sample_features)
            parts = {
                "contrast_s": build_contrast(contrast, n, contrast_option(config, "loss")),
                "contrast_t": build_contrast(contrast, n, contrast_option(config, "loss")),
                "embed_s": Embed(model.feature_dim, contrast.embed_dim),
                "embed_t": Embed(teacher.feature_dim, contrast.embed_dim),
                "negatives": negatives,
            }
        return DistillObjective(
            model, teacher, ce_w, kd_w, crd_w, kd_temperature=config.distill.kd_temperature, **parts
        )
    raise ConfigError(
        f"unknown train.objective '{config.train.objective}'. Valid choices: {', '.join(OBJECTIVES)}"
    )
