"""Reject an invalid configuration before any data is loaded or any model is built."""

from __future__ import annotations

from scns.config import Config, ConfigError
from scns.train.schedule import SCHEDULES


def validate_config(config: Config, check_teacher: bool = True) -> None:
    """Raise :class:`ConfigError` (or ``UnknownNameError`` listing valid names) for the first problem found.

    ``check_teacher=False`` skips reading the distillation teacher's checkpoint, for a config whose
    teacher is still to be trained (a grid checks every cell before its first run).
    """
    from scns.data import get_spec
    from scns.models import MODELS

    get_spec(config.data.dataset)  # unknown dataset -> UnknownNameError listing the choices
    MODELS.get(config.model.name)  # unknown model -> UnknownNameError listing the choices
    _positive("data.batch_size", config.data.batch_size)
    _positive("data.eval_batch_size", config.data.eval_batch_size)
    if config.data.val_size < 0:
        raise ConfigError(f"data.val_size must be >= 0 (0: no validation split), got {config.data.val_size}")
    if config.data.eval_split not in ("test", "val"):
        raise ConfigError(f"data.eval_split must be 'test' or 'val', got {config.data.eval_split!r}")
    if config.data.eval_split == "val" and config.data.val_size == 0:
        raise ConfigError("data.eval_split=val needs a validation split: set data.val_size (e.g. 5000)")
    _positive("train.epochs", config.train.epochs)
    _positive("train.log_every", config.train.log_every)
    _positive("train.eval_every", config.train.eval_every)
    if config.train.max_steps_per_epoch is not None:
        _positive("train.max_steps_per_epoch", config.train.max_steps_per_epoch)
    if config.train.skip_nonfinite < 0:
        raise ConfigError(f"train.skip_nonfinite must be >= 0, got {config.train.skip_nonfinite}")
    optim = config.optim
    if optim.schedule not in SCHEDULES:
        raise ConfigError(f"unknown optim.schedule '{optim.schedule}'. Valid choices: {', '.join(SCHEDULES)}")
    if not optim.lr > 0:
        raise ConfigError(f"optim.lr must be > 0, got {optim.lr}")
    if optim.weight_decay < 0 or optim.momentum < 0:
        raise ConfigError("optim.weight_decay and optim.momentum must be >= 0")
    if optim.nesterov and optim.momentum == 0:
        raise ConfigError("optim.nesterov needs optim.momentum > 0")
    if not 0 <= optim.label_smoothing < 1:
        raise ConfigError(f"optim.label_smoothing must be in [0, 1), got {optim.label_smoothing}")
    if not 0 < optim.pct_start < 1:
        raise ConfigError(f"optim.pct_start must be in (0, 1), got {optim.pct_start}")
    if optim.warmup_epochs < 0:
        raise ConfigError(f"optim.warmup_epochs must be >= 0, got {optim.warmup_epochs}")
    if any(m <= 0 for m in optim.milestones):
        raise ConfigError(f"optim.milestones must be positive epochs, got {list(optim.milestones)}")
    validate_method(config)
    if check_teacher:
        validate_teacher(config)


def _positive(key: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def validate_method(config: Config) -> None:
    """Checks of the objective's sections (contrastive term, distillation)."""
    from scns.data import get_spec
    from scns.losses import LOSSES
    from scns.memory import BANK_DTYPES
    from scns.models.frozen import TEACHER_MODES
    from scns.objectives.build import OBJECTIVES, contrast_weight, sampler_names
    from scns.objectives.distill import METHODS
    from scns.sampling import SAMPLERS

    c = config.contrast
    if config.train.objective not in OBJECTIVES:
        raise ConfigError(
            f"unknown train.objective '{config.train.objective}'. Valid choices: {', '.join(OBJECTIVES)}"
        )
    distill = config.train.objective == "distill"
    if distill and config.distill.method not in METHODS:
        raise ConfigError(
            f"unknown distill.method '{config.distill.method}'. Valid choices: {', '.join(METHODS)}"
        )
    if distill and config.distill.teacher_mode not in TEACHER_MODES:
        raise ConfigError(
            f"unknown distill.teacher_mode '{config.distill.teacher_mode}'. "
            f"Valid choices: {', '.join(TEACHER_MODES)}"
        )
    if c.weight is not None and c.weight < 0:
        raise ConfigError(f"contrast.weight must be >= 0, got {c.weight}")
    if contrast_weight(config) <= 0:
        return
    if c.loss is not None:
        LOSSES.get(c.loss)
        if c.loss not in ("nce", "infonce"):
            raise ConfigError(f"contrast.loss must be nce or infonce, got '{c.loss}'")
    for name in [c.sampler or "uniform", *sampler_names(c)]:
        SAMPLERS.get(name)
    num_classes = get_spec(config.data.dataset).num_classes
    _positive("contrast.negatives", c.negatives)
    _positive("contrast.embed_dim", c.embed_dim)
    _positive("contrast.refresh_every", c.refresh_every)
    if not c.temperature > 0:
        raise ConfigError(f"contrast.temperature must be > 0, got {c.temperature}")
    if not 0 <= c.bank_momentum < 1:
        raise ConfigError(f"contrast.bank_momentum must be in [0, 1), got {c.bank_momentum}")
    if c.bank_dtype not in BANK_DTYPES:
        raise ConfigError(
            f"contrast.bank_dtype must be one of {', '.join(BANK_DTYPES)}, got '{c.bank_dtype}'"
        )
    if c.knn_backend not in ("torch", "faiss"):
        raise ConfigError(f"contrast.knn_backend must be 'torch' or 'faiss', got '{c.knn_backend}'")
    if c.knn_index not in ("flat", "ivf"):
        raise ConfigError(f"contrast.knn_index must be 'flat' or 'ivf', got '{c.knn_index}'")
    if c.knn_index == "ivf" and c.knn_backend != "faiss":
        raise ConfigError("contrast.knn_index=ivf needs contrast.knn_backend=faiss (pip install faiss-cpu)")
    _positive("contrast.knn_nprobe", c.knn_nprobe)
    if c.positive not in (None, "self", "class"):
        raise ConfigError(f"contrast.positive must be 'self' or 'class', got '{c.positive}'")
    if c.nce_z not in ("first_batch", "running"):
        raise ConfigError(f"contrast.nce_z must be 'first_batch' or 'running', got '{c.nce_z}'")
    if c.weighting not in ("uniform", "softmax"):
        raise ConfigError(f"contrast.weighting must be 'uniform' or 'softmax', got '{c.weighting}'")
    if "class_topk" in sampler_names(c):
        if not c.similarity:
            raise ConfigError(
                "sampler class_topk needs contrast.similarity (--similarity glove|wordnet|text|hierarchy|prototypes:RUN_DIR)"
            )
        _check_class_count("contrast.top_k", c.top_k, num_classes, config.data.dataset)
    _positive("contrast.top_k", c.top_k)
    if c.share_top_k is not None:
        if not c.similarity:
            raise ConfigError(
                "contrast.share_top_k needs contrast.similarity: the share counts the classes most similar by it"
            )
        _check_class_count("contrast.share_top_k", c.share_top_k, num_classes, config.data.dataset)
    if c.latent_mixup < 0:
        raise ConfigError(f"contrast.latent_mixup must be >= 0, got {c.latent_mixup}")
    if c.latent_mixup:
        if not 0 < c.mixup_alpha <= 0.5:
            raise ConfigError(
                f"contrast.mixup_alpha must be in (0, 0.5] so mixes stay on the negative's side, got {c.mixup_alpha}"
            )
        if c.mixup_mode not in ("anchor", "negatives"):
            raise ConfigError(f"contrast.mixup_mode must be 'anchor' or 'negatives', got '{c.mixup_mode}'")
        pool = max(c.latent_mixup, 2) if c.mixup_mode == "negatives" else c.latent_mixup
        if pool > c.negatives:
            raise ConfigError(
                f"contrast.latent_mixup={c.latent_mixup} needs at least {pool} real negatives, got contrast.negatives={c.negatives}"
            )


def validate_teacher(config: Config) -> None:
    """A distillation teacher must exist and fit the dataset (read from its checkpoint, no data loaded)."""
    from scns.data import get_spec
    from scns.train.checkpoint import CheckpointError, load_checkpoint

    if config.train.objective != "distill":
        return
    if not config.distill.teacher:
        raise ConfigError(
            "distillation needs a teacher: --teacher RUN_DIR (a run of `scns train`) or a checkpoint"
        )
    state = load_checkpoint(config.distill.teacher)
    arch = state.get("config", {}).get("model", {}).get("name")
    if config.distill.teacher_model and arch != config.distill.teacher_model:
        raise CheckpointError(
            f"teacher checkpoint {state['path']} holds a '{arch}', but distill.teacher_model is '{config.distill.teacher_model}'"
        )
    num_classes = get_spec(config.data.dataset).num_classes
    if state.get("num_classes") != num_classes:
        raise CheckpointError(
            f"teacher checkpoint {state['path']} was trained for {state.get('num_classes')} classes, "
            f"but {config.data.dataset} has {num_classes}: the student and teacher must share the classes"
        )


def _check_class_count(key: str, k: int, num_classes: int, dataset: str) -> None:
    """A number of other classes ``k`` must lie in [1, C - 1]."""
    if not 1 <= k <= num_classes - 1:
        raise ConfigError(
            f"{key}={k} classes is impossible for {dataset}: each class has {num_classes - 1} other "
            f"classes, so {key.rsplit('.', 1)[-1]} must be in [1, {num_classes - 1}]"
        )
