"""Reject an invalid configuration before any data is loaded or any model is built.

Also the rules of a resume (:data:`RESUMABLE_KEYS`, :func:`resume_changes`) and the pinning of a
distillation teacher by the SHA-256 of its checkpoint (:func:`pin_teacher`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scns.config import Config, ConfigError
from scns.train.schedule import SCHEDULES

#: Options a resumed run may change: how long it trains and how fast, how it reports, where it runs
#: and reads its data. Every other option changes what is trained (dataset, model, teacher, sampler,
#: objective, contrast/distill settings, seed, batch size, ...) and is refused on resume.
#: ``distill.teacher`` may move only to a file with the pinned SHA-256 (``distill.teacher_sha256``).
RESUMABLE_KEYS = frozenset(
    {
        "train.epochs",
        "optim.lr",
        "optim.gamma",
        "optim.milestones",
        "train.skip_nonfinite",
        "train.progress",
        "train.log",
        "train.device",
        "train.log_every",
        "train.eval_every",
        "train.dist_timeout_s",
        "data.eval_batch_size",
        "data.data_dir",
        "data.download",
        "distill.teacher",
    }
)


def validate_config(config: Config, check_teacher: bool = True) -> None:
    """Raise :class:`ConfigError` (or ``UnknownNameError`` listing valid names) for the first problem found.

    ``check_teacher=False`` skips the checks that need files: reading the distillation teacher's
    checkpoint and requiring a data directory, for a config whose teacher is still to be trained
    (a grid checks every cell before its first run; it checks the data directory itself).
    """
    validate_options(config)
    if check_teacher:
        validate_files(config)


def validate_files(config: Config) -> None:
    """The checks that read files: the data directory is given, and the teacher checkpoint fits."""
    validate_data_dir(config)
    validate_teacher(config)


def validate_options(config: Config) -> None:
    """The checks of the options alone (no file is read): names, ranges, combinations."""
    from scns.data import get_spec
    from scns.models import MODELS

    validate_finite(config)
    validate_choices(config)
    get_spec(config.data.dataset)  # unknown dataset -> UnknownNameError listing the choices
    MODELS.get(config.model.name)  # unknown model -> UnknownNameError listing the choices
    _positive("data.batch_size", config.data.batch_size)
    _positive("data.eval_batch_size", config.data.eval_batch_size)
    if config.data.val_size < 0:
        raise ConfigError(f"data.val_size must be >= 0 (0: no validation split), got {config.data.val_size}")
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


def resolve_config(config: Config, check_teacher: bool = True) -> Config:
    """The one resolution step every run goes through: ``config`` validated (:func:`validate_config`),
    its distillation teacher pinned (:func:`pin_teacher`, with ``check_teacher``), and every
    setting-dependent default it leaves ``None`` filled in
    (:func:`scns.objectives.build.resolved_defaults`), so the run's ``config.yaml`` records the values
    it runs with. Idempotent: resolving a resolved config changes nothing.
    """
    validate_options(config)  # the options first: cheap, and what users fix most
    if check_teacher:
        config = pin_teacher(config)
        validate_files(config)
    return fill_defaults(config)


def fill_defaults(config: Config) -> Config:
    """``config`` with the setting-dependent defaults it leaves ``None`` filled in, unvalidated (it reads
    no files): for a run's stored config, whose data directory may have moved."""
    from scns.objectives.build import resolved_defaults

    filled = resolved_defaults(config)
    return config.with_overrides(filled) if filled else config


def nonfinite_options(config: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every float option of the config holding NaN or inf, as (dotted key, value).

    Walks the dataclass schema (and free-form mappings and lists inside it), so an option added to
    any section is covered without naming it here.
    """
    if dataclasses.is_dataclass(config):
        items = [(f.name, getattr(config, f.name)) for f in dataclasses.fields(config)]
    else:
        items = [(str(k), v) for k, v in config.items()]
    found: list[tuple[str, Any]] = []
    for name, value in items:
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(value) or isinstance(value, Mapping):
            found.extend(nonfinite_options(value, key + "."))
        elif isinstance(value, (tuple, list)):
            if any(_nonfinite(v) for v in value):
                found.append((key, value))
        elif _nonfinite(value):
            found.append((key, value))
    return found


def _nonfinite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def validate_finite(config: Config) -> None:
    """Reject NaN and inf in any float option (``--contrast-weight nan`` must not turn a term off)."""
    bad = nonfinite_options(config)
    if bad:
        listed = ", ".join(f"{key}={value}" for key, value in bad)
        raise ConfigError(f"options must be finite numbers, got {listed}")


def validate_choices(config: Config) -> None:
    """Every option with a fixed set of values holds one of them: those the schema declares
    (``option(..., choices=...)``) and the common ``contrast`` keys whose values a sampler's ``Options``
    declares (``common_key_choices``), whether or not that sampler is in use."""
    from scns.sampling.configured import common_key_choices

    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            choices = f.metadata.get("choices")
            if choices is None and section.name == "contrast":
                choices = common_key_choices(f.name)
            if choices is None or value is None or value in choices:
                continue
            raise ConfigError(f"{section.name}.{f.name} must be one of {', '.join(choices)}, got {value!r}")


def validate_data_dir(config: Config) -> None:
    """A dataset read from files needs a data directory (caught here, before a model is built)."""
    from scns.data import get_spec

    if get_spec(config.data.dataset).needs_data_dir and not config.data.data_dir:
        raise ConfigError(
            f"dataset '{config.data.dataset}' is read from files: pass --data-dir DIR (or set SCNS_DATA_DIR, "
            "or --set data.data_dir=DIR); add --download to fetch it there"
        )


def _flat(config: Config) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, values in config.to_dict().items():
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def resume_changes(base: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """The options ``new`` changes from a run's saved config ``base``: {key: (old, new)}.

    Raises:
        ConfigError: some changed option is not in :data:`RESUMABLE_KEYS`; the message names each
            with its old and new value.
    """
    old_values, new_values = _flat(base), _flat(new)
    changed = {k: (old_values.get(k), v) for k, v in new_values.items() if old_values.get(k) != v}
    refused = {k: v for k, v in changed.items() if k not in RESUMABLE_KEYS}
    if refused:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(refused.items()))
        raise ConfigError(
            f"cannot change on resume: {listed}. These change what the run trains; start a new run instead "
            f"(another --name). Options a resume may change: {', '.join(sorted(RESUMABLE_KEYS))}"
        )
    return changed


def pin_teacher(config: Config) -> Config:
    """Pin a distillation run's teacher: ``distill.teacher`` made absolute (so a resume from another
    working directory finds it) and ``distill.teacher_sha256`` set to its checkpoint's SHA-256.

    A config already pinned keeps its digest, which the teacher must still match.

    Raises:
        CheckpointError: the teacher is missing, or its checkpoint no longer has the pinned digest.
    """
    from scns.train.checkpoint import file_digest, resolve_checkpoint_path

    if config.train.objective != "distill" or not config.distill.teacher:
        return config
    path = Path(config.distill.teacher).expanduser().absolute()
    digest = file_digest(resolve_checkpoint_path(path))
    _check_pin(config, path, digest)
    return config.with_overrides({"distill.teacher": str(path), "distill.teacher_sha256": digest})


def _check_pin(config: Config, path: Path | str, digest: str) -> None:
    from scns.train.checkpoint import CheckpointError

    pinned = config.distill.teacher_sha256
    if pinned and pinned != digest:
        raise CheckpointError(
            f"teacher {path} has changed: its checkpoint's SHA-256 is {digest[:16]}..., but this run was "
            f"distilled from one with {pinned[:16]}... (distill.teacher_sha256). Put the original teacher "
            "back (or pass --teacher with its new location), or start a new run for the new teacher"
        )


def _positive(key: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def validate_method(config: Config) -> None:
    """Checks of the objective's sections (contrastive term, distillation)."""
    from scns.data import dataset_num_classes
    from scns.losses import LOSSES
    from scns.memory import BANK_DTYPES
    from scns.models.frozen import TEACHER_MODES
    from scns.objectives.build import OBJECTIVES, build_mixup, contrast_weight
    from scns.objectives.distill import METHODS
    from scns.sampling.configured import validate_sampler_config

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
    if distill:
        _validate_distill(config)
    if contrast_weight(config) <= 0:
        return
    if c.loss is not None:
        LOSSES.get(c.loss)
        if c.loss not in ("nce", "infonce"):
            raise ConfigError(f"contrast.loss must be nce or infonce, got '{c.loss}'")
    num_classes = dataset_num_classes(config.data.dataset, config.data.data_dir)
    validate_sampler_config(c, num_classes)  # every option of every sampler used, by the samplers
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
    if c.knn_index == "ivf" and c.knn_backend != "faiss":
        raise ConfigError("contrast.knn_index=ivf needs contrast.knn_backend=faiss (pip install faiss-cpu)")
    _positive("contrast.knn_nprobe", c.knn_nprobe)
    if not 0.0 <= c.proposal_beta <= 1.0:
        raise ConfigError(
            f"contrast.proposal_beta must be in [0, 1] (0: no correction), got {c.proposal_beta}"
        )
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
        build_mixup(c)  # the transform checks its own options
        pool = max(c.latent_mixup, 2) if c.mixup_mode == "negatives" else c.latent_mixup
        if pool > c.negatives:
            raise ConfigError(
                f"contrast.latent_mixup={c.latent_mixup} needs at least {pool} real negatives, got contrast.negatives={c.negatives}"
            )


def _validate_distill(config: Config) -> None:
    d = config.distill
    if not d.kd_temperature > 0:
        raise ConfigError(f"distill.kd_temperature must be > 0, got {d.kd_temperature}")
    for key in ("ce_weight", "kd_weight"):
        value = getattr(d, key)
        if value is not None and value < 0:
            raise ConfigError(f"distill.{key} must be >= 0, got {value}")


def validate_teacher(config: Config) -> None:
    """A distillation teacher must exist and fit the dataset (read from its checkpoint, no data loaded)."""
    from scns.data import dataset_num_classes
    from scns.train.checkpoint import CheckpointError, load_checkpoint

    if config.train.objective != "distill":
        return
    if not config.distill.teacher:
        raise ConfigError(
            "distillation needs a teacher: --teacher RUN_DIR (a run of `scns train`) or a checkpoint"
        )
    state = load_checkpoint(config.distill.teacher)
    if config.distill.teacher_sha256:
        from scns.train.checkpoint import file_digest

        _check_pin(config, config.distill.teacher, file_digest(state["path"]))
    arch = state.get("config", {}).get("model", {}).get("name")
    if config.distill.teacher_model and arch != config.distill.teacher_model:
        raise CheckpointError(
            f"teacher checkpoint {state['path']} holds a '{arch}', but distill.teacher_model is '{config.distill.teacher_model}'"
        )
    num_classes = dataset_num_classes(config.data.dataset, config.data.data_dir)
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
