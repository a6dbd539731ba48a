"""Run configuration: frozen dataclasses per section, YAML presets and dotted overrides.

A run is fully described by one :class:`Config`. It is built from defaults, then an optional YAML
file, then dotted overrides such as ``optim.lr=0.1``; the resolved result is saved in the run
directory (``config.yaml``) so a run can be resumed or reproduced from it alone.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from scns.errors import ScnsError


class ConfigError(ScnsError, ValueError):
    """An invalid configuration value or key; the message says which and what is allowed."""


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple[str, ...] | None = None,
    nargs: str | int | None = None,
) -> Any:
    """A config field declared once: its default, its help, the CLI flag that sets it (if any) and,
    for a fixed enumeration, its allowed values.

    ``scns.commands.options`` generates the command-line flags from these (type from the annotation,
    the default appended to the help from the schema, so the two cannot disagree) and
    :func:`validate_choices` checks every ``choices`` option. Names that come from a registry
    (models, datasets, samplers, losses, schedules) are checked by the registry instead.
    A boolean flag named ``--no-...`` sets the option to False; any other boolean flag sets it to True.
    """
    metadata: dict[str, Any] = {"help": help}
    if flag is not None:
        metadata["flag"] = flag
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if nargs is not None:
        metadata["nargs"] = nargs
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class DataConfig:
    """Which data, where it lives, and how it is batched.

    ``val_size`` > 0 holds out that many training images (stratified by class, chosen by
    ``val_seed`` alone, so a teacher and its students hold out the same images) and trains on the
    rest. ``eval_split`` names what the run evaluates on: ``test`` (the official test split) or
    ``val`` (the held-out images; the test split is then never read, for choosing settings).
    """

    dataset: str = option("digits", "dataset name (see `scns datasets`)", flag="--dataset")
    data_dir: str | None = option(
        None,
        "folder holding the dataset files (default: $SCNS_DATA_DIR)",
        flag="--data-dir",
    )
    download: bool = option(False, "download the dataset into --data-dir if missing", flag="--download")
    batch_size: int = option(64, "training batch size", flag="--batch-size")
    eval_batch_size: int = 500
    augment: bool = True
    val_size: int = option(
        0,
        "hold out this many training images (stratified, fixed by data.val_seed) and train on the rest",
        flag="--val-size",
    )
    val_seed: int = 0
    eval_split: str = option(
        "test",
        "evaluate on the test split, or on the held-out val split (which never reads the test split)",
        flag="--eval-split",
        choices=("test", "val"),
    )


@dataclass(frozen=True)
class ModelConfig:
    """Which architecture to train (a name from ``scns models``)."""

    name: str = option("resnet8", "architecture (see `scns models`)", flag="--model")


@dataclass(frozen=True)
class OptimConfig:
    """SGD and its learning-rate schedule.

    ``schedule`` is one of ``multistep`` (lr x ``gamma`` at each epoch in ``milestones``, the CRD
    benchmark's schedule), ``cosine`` (to 0 over the run) or ``onecycle`` (linear warm-up over
    ``pct_start`` of the steps to ``lr``, then linear decay to 0).
    """

    lr: float = option(0.05, "base learning rate", flag="--lr")
    momentum: float = option(0.9, "SGD momentum", flag="--momentum")
    nesterov: bool = option(False, "use Nesterov momentum", flag="--nesterov")
    weight_decay: float = option(5e-4, "SGD weight decay", flag="--weight-decay")
    schedule: str = option("multistep", "learning-rate schedule", flag="--schedule")
    milestones: tuple[int, ...] = option(
        (150, 180, 210),
        "multistep epochs at which lr is multiplied by gamma",
        flag="--milestones",
        nargs="+",
    )
    gamma: float = 0.1
    pct_start: float = 0.25
    warmup_epochs: int = 0
    label_smoothing: float = option(0.0, "cross-entropy label smoothing", flag="--label-smoothing")


@dataclass(frozen=True)
class TrainConfig:
    """How long to train and the run's bookkeeping."""

    objective: str = option("supervised", "what the run trains", flag="--objective")
    epochs: int = option(240, "number of epochs", flag="--epochs")
    seed: int = option(0, "random seed", flag="--seed")
    device: str = option("auto", "auto | cpu | cuda | cuda:N", flag="--device")
    deterministic: bool = option(False, "deterministic kernels (exact resume on GPU)", flag="--deterministic")
    amp: bool = True
    channels_last: bool = True
    out_dir: str = option("runs", "parent folder of run directories", flag="--out-dir")
    name: str | None = option(None, "run directory name (default: generated)", flag="--name")
    log_every: int = 50
    log: str = option(
        "jsonl",
        "metrics sinks besides metrics.jsonl: jsonl | tensorboard (pip install 'scns[tensorboard]')",
        flag="--log",
    )
    eval_every: int = 1
    progress: bool = True
    skip_nonfinite: int = option(0, "tolerate up to N steps with a NaN/inf loss", flag="--skip-nonfinite")
    dist_timeout_s: float = 300.0
    max_steps_per_epoch: int | None = None


@dataclass(frozen=True)
class ContrastConfig:
    """The contrastive term: where negatives come from and how they are scored.

    ``sampler``: uniform | class_topk | sample_topk | mixture. In the supervised setting the
    contrastive term is on exactly when a sampler is set; CRD methods default to uniform.
    ``None`` for ``weight``, ``loss`` and ``positive`` takes the setting's default:
    distillation follows the CRD benchmark (weight 0.8, NCE, positive = the same sample in the other
    network's bank); the supervised setting uses weight 0.5, InfoNCE and a same-class positive, because
    NCE with a first-batch normaliser over the network's own bank collapses there (BENCHMARKS.md, s. 3). ``similarity`` (for class_topk) names a
    source of ``scns similarity``: glove, wordnet, text, hierarchy, or ``prototypes:RUN_DIR`` /
    ``confusion:RUN_DIR``. ``top_k`` is the number of similar classes (class_topk) or neighbours
    (sample_topk). ``mixture`` lists ``name:fraction`` parts sharing these options.
    ``share_top_k``: the logged share of negatives from the anchor's most similar classes counts
    this many classes (needs ``similarity``); ``None`` takes ``top_k`` unless a sample_topk
    sampler is in use (its ``top_k`` counts samples, not classes), and then logs no share.
    ``ties`` (class_topk): ``share`` keeps every class tied at the k-th place, sharing its weight
    (no result depends on the class order); ``id`` is the legacy cut by class id. ``mixture_ramp``:
    ``[start, end]`` epochs over which a mixture's non-uniform shares rise from 0 (uniform holds the
    rest). ``sampler_options``: ``{sampler: {option: value}}`` for any option of a sampler's own
    ``Options`` (these win over the common keys above). ``proposal_beta`` in [0, 1] corrects the loss
    for the sampler's proposal q: 0 is the plain objective, 1 the unbiased estimate of the uniform
    objective (NCE with the true noise density, InfoNCE with a log q correction). ``bank_prefill``
    fills every memory bank with one no-grad pass over the training set before the first step.
    ``knn_source``: what sample_topk's table is built from in distillation: ``bank`` (the teacher's
    memory bank, the space the student is contrasted in, every ``refresh_every`` epochs) or
    ``teacher_features`` (legacy: the teacher's raw pooled features, once).
    ``bank_dtype`` (float32 | bfloat16 | float16) stores the memory banks at that precision: half
    the memory for large N (BENCHMARKS.md, s. 6 gives its accuracy effect). ``knn_backend`` (torch |
    faiss), ``knn_index`` (flat: exact | ivf: approximate, for N in the millions) and ``knn_nprobe``
    choose how sample_topk builds its table.
    """

    weight: float | None = option(
        None,
        "weight of the contrastive term",
        flag="--contrast-weight",
    )
    loss: str | None = option(
        None,
        "contrastive loss",
        flag="--contrast-loss",
    )
    negatives: int = option(4096, "negatives per anchor (K)", flag="--negatives")
    temperature: float = option(0.07, "contrastive temperature", flag="--nce-t")
    embed_dim: int = option(128, "embedding size of the contrastive heads", flag="--embed-dim")
    bank_momentum: float = 0.5
    bank_dtype: str = option(
        "float32",
        "memory bank storage precision",
        flag="--bank-dtype",
    )
    positive: str | None = option(
        None,
        "positive: the same sample's entry in the other bank (self) or a same-class sample (class)",
        flag="--positive",
        choices=("self", "class"),
    )
    nce_z: str = option(
        "first_batch",
        "NCE normaliser: fixed from the first batch (CRD) or a running mean",
        choices=("first_batch", "running"),
    )
    sampler: str | None = option(
        None,
        "negative sampler (supervised: setting one adds the contrastive term; CRD methods default to uniform)",
        flag="--sampler",
    )
    similarity: str | None = option(
        None,
        "class similarity for class_topk: glove | wordnet | text | hierarchy | prototypes:RUN_DIR | confusion:RUN_DIR | teacher:prototypes | teacher:confusion | bank (the memory bank's class means, recomputed each epoch); chains (wordnet+glove: ties broken by glove) and blends (glove:0.5+bank:0.5)",
        flag="--similarity",
    )
    top_k: int = option(
        10,
        "similar classes (class_topk) or neighbours (sample_topk) to draw from",
        flag="--top-k",
    )
    share_top_k: int | None = None
    weighting: str = option(
        "uniform",
        "class_topk class weighting: every kept sample alike, or classes by softmax of similarity",
        flag="--weighting",
    )
    class_temperature: float = 1.0
    refresh_every: int = option(5, "rebuild sample_topk tables every N epochs", flag="--refresh-every")
    knn_backend: str = option("torch", "sample_topk table build backend", flag="--knn-backend")
    knn_index: str = option(
        "flat",
        "faiss index: flat is exact, ivf approximate (for large N)",
        flag="--knn-index",
    )
    knn_nprobe: int = 32
    mixture: tuple[str, ...] = option(
        ("uniform:0.5", "class_topk:0.5"),
        "mixture parts, e.g. uniform:0.5 class_topk:0.5",
        flag="--mixture",
        nargs="+",
    )
    mixture_ramp: tuple[int, ...] = option(
        (),
        "a mixture's non-uniform shares rise from 0 at epoch START to their fractions at END",
        flag="--mixture-ramp",
        nargs=2,
    )
    ties: str = option(
        "share",
        "class_topk ties at the k-th place: share them (no result depends on class order), or cut by class id (legacy)",
        flag="--ties",
    )
    sampler_options: dict[str, Any] = field(default_factory=dict)
    proposal_beta: float = option(
        0.0,
        "loss correction for non-uniform negatives, in [0, 1]: 0 none, 1 unbiased for the uniform objective",
        flag="--proposal-beta",
    )
    bank_prefill: bool = option(
        True,
        "start the memory banks random instead of filling them with one pass before training",
        flag="--no-bank-prefill",
    )
    knn_source: str = option(
        "bank",
        "distillation sample_topk table from the teacher's bank or its raw features",
        flag="--knn-source",
        choices=("bank", "teacher_features"),
    )
    latent_mixup: int = option(
        0,
        "pseudo-negatives per anchor from latent mixup (0: off)",
        flag="--latent-mixup",
    )
    mixup_alpha: float = option(
        0.5,
        "latent mixup: lam ~ U(0, alpha) with alpha in (0, 0.5], or Beta(alpha, alpha) with --mixup-lam beta",
        flag="--mixup-alpha",
    )
    mixup_mode: str = option("anchor", "latent mixup: anchor | negatives", flag="--mixup-mode")
    mixup_hardest: bool = True
    mixup_lam: str = option("uniform", "latent mixup lambda: uniform (legacy) | beta", flag="--mixup-lam")
    mixup_lam_max: float = option(0.4, "beta lambda is scaled into [0, this] (< 0.5)", flag="--mixup-lam-max")
    mixup_cap: bool = option(
        False,
        "drop pseudo-negatives that score above the anchor's positive",
        flag="--mixup-cap",
    )
    log_negatives: int = 2048


@dataclass(frozen=True)
class DistillConfig:
    """Teacher -> student distillation.

    ``method``: student (CE only) | kd (Hinton) | crd | crd+kd. Weights left ``None`` take the CRD
    benchmark's defaults for the method: CE 1 (0.1 for kd), KD 0.9 for kd and 1 for crd+kd.

    ``teacher_mode``: how the frozen teacher's forward runs, one of ``scns.models.frozen.TEACHER_MODES``
    (the recipes are in that module; ``auto`` compiles on CPU for long runs and uses bf16 on CUDA).
    The mode used is recorded in the run's summary.json.

    ``teacher_sha256``: the SHA-256 of the teacher's checkpoint, filled when the run is created
    (``teacher`` is made absolute then too) and checked on every resume.
    """

    teacher: str | None = option(
        None,
        "teacher run directory (from `scns train`) or checkpoint",
        flag="--teacher",
    )
    teacher_model: str | None = option(
        None,
        "expected teacher architecture (checked against the checkpoint)",
        flag="--teacher-model",
    )
    method: str = option("crd", "distillation method", flag="--method")
    ce_weight: float | None = option(None, "cross-entropy weight", flag="--ce-weight")
    kd_weight: float | None = option(None, "KD weight", flag="--kd-weight")
    kd_temperature: float = option(4.0, "Hinton KD temperature", flag="--kd-temperature")
    teacher_mode: str = option(
        "auto",
        "how the frozen teacher's forward runs (scns.models.frozen)",
        flag="--teacher-mode",
    )
    teacher_sha256: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything a run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), suitable for YAML/JSON."""
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Build from a nested dict; unknown sections or keys raise :class:`ConfigError`."""
        return _apply_mapping(cls(), data, prefix="")

    def with_overrides(self, overrides: Iterable[str] | Mapping[str, Any]) -> Config:
        """Apply dotted overrides, either ``["optim.lr=0.1", ...]`` or ``{"optim.lr": 0.1}``.

        String values are parsed as YAML scalars (``0.1``, ``true``, ``[150, 180]``, ``null``).
        """
        items = (
            overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
        )
        config = self
        for key, value in items:
            config = _set_dotted(config, key, value)
        return config

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read a YAML config: a file (a preset or a run's saved ``config.yaml``) or the name of a preset
        shipped with scns, such as ``cifar100/resnet56-resnet20`` (see :func:`preset_path`).

        A file may start from others with ``extends: other.yaml`` or ``extends: [a.yaml, b.yaml]``
        (paths relative to the file): the bases are merged in order, then the file's own sections
        over them, key by key within a section.
        """
        return cls.from_dict(_load_yaml_tree(resolve_config_path(path), seen=()))


#: The presets shipped inside the package (``configs/`` in a source checkout links here).
PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def is_shared_base(path: Path) -> bool:
    """Whether a preset file is a base the presets extend rather than a preset of its own: a
    dataset's ``*schedule.yaml`` or the shipped method and negatives, ``distill_defaults.yaml``."""
    return path.stem.endswith(("schedule", "defaults"))


def preset_names() -> list[str]:
    """Every shipped preset, as ``<dataset>/<name>`` (the shared bases excluded)."""
    return sorted(
        str(p.relative_to(PRESETS_DIR).with_suffix(""))
        for p in PRESETS_DIR.rglob("*.yaml")
        if not is_shared_base(p)
    )


def _preset_file(name: str) -> Path:
    return PRESETS_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")


def preset_path(name: str) -> Path:
    """The file of the shipped preset ``name`` (``cifar100/resnet56-resnet20``, ``.yaml`` optional)."""
    path = _preset_file(name)
    if not path.is_file():
        raise ConfigError(f"no preset named '{name}'. Shipped presets: {', '.join(preset_names())}")
    return path


def resolve_config_path(path: str | Path) -> Path:
    """``path`` when it is a file; else the shipped preset of that name; else a ConfigError."""
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    preset = _preset_file(str(path).removeprefix("configs/"))
    if preset.is_file():
        return preset
    raise ConfigError(
        f"config file not found: {path} (nor a shipped preset of that name; `scns presets` lists them)"
    )


#: ``yaml.safe_load``'s loader, in libyaml's C build where PyYAML has it (about 10x faster).
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml_tree(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"config files extend each other in a cycle: {chain}")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    data = dict(data)
    base_names = data.pop("extends", None)
    if base_names is None:
        return data
    if isinstance(base_names, str):
        base_names = [base_names]
    if not isinstance(base_names, list) or not all(isinstance(n, str) for n in base_names):
        raise ConfigError(
            f"config file {path}: extends must be a file name or a list of them, got {base_names!r}"
        )
    merged: dict[str, Any] = {}
    for base_name in base_names:
        _merge_sections(merged, _load_yaml_tree(path.parent / base_name, (*seen, path.resolve())))
    return _merge_sections(merged, data)


def _merge_sections(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over``'s sections merged into ``base`` (in place) key by key; a non-mapping value replaces."""
    for section, values in over.items():
        if isinstance(values, Mapping) and isinstance(base.get(section), Mapping):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return base


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.1"`` -> ``("optim.lr", 0.1)``; the value is read as a YAML scalar or list."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value, e.g. optim.lr=0.1")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _apply_mapping(obj: Any, data: Mapping[str, Any], prefix: str) -> Any:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        sub = _field_value(obj, key, dotted)
        if dataclasses.is_dataclass(sub):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{dotted}' is a section; give a mapping of its keys, not {value!r}")
            obj = replace(obj, **{key: _apply_mapping(sub, value, dotted + ".")})
        else:
            obj = replace(obj, **{key: _coerce(obj, key, value, dotted)})
    return obj


def _set_dotted(config: Any, dotted: str, value: Any, prefix: str = "") -> Any:
    head, _, rest = dotted.partition(".")
    full = f"{prefix}{dotted}"
    sub = _field_value(config, head, f"{prefix}{head}")
    if rest and isinstance(sub, Mapping):  # a free-form mapping field: set a nested key in a copy
        return replace(config, **{head: _set_in_mapping(sub, rest, value)})
    if rest:
        if not dataclasses.is_dataclass(sub):
            raise ConfigError(f"'{prefix}{head}' is not a section, so '{full}' is not a valid key")
        return replace(config, **{head: _set_dotted(sub, rest, value, f"{prefix}{head}.")})
    if dataclasses.is_dataclass(sub):
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{full}' is a section; set one of its keys, e.g. {full}.<key>=...")
        return replace(config, **{head: _apply_mapping(sub, value, full + ".")})
    return replace(config, **{head: _coerce(config, head, value, full)})


def nest_dotted(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{"contrast.top_k": 10}`` -> ``{"contrast": {"top_k": 10}}``: dotted keys as a config file's
    nested sections (the inverse of :func:`flatten_sections`)."""
    nested: dict[str, Any] = {}
    for dotted, value in settings.items():
        nested = _set_in_mapping(nested, dotted, value)
    return nested


def flatten_sections(sections: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"contrast": {"top_k": 10}}`` -> ``{"contrast.top_k": 10}``: a config file's nested sections
    as dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in sections.items():
        if isinstance(value, Mapping):
            flat.update(flatten_sections(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _set_in_mapping(mapping: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    out = dict(mapping)
    if rest:
        inner = out.get(head, {})
        out[head] = _set_in_mapping(inner if isinstance(inner, Mapping) else {}, rest, value)
    else:
        out[head] = value
    return out


def _field_value(obj: Any, key: str, dotted: str) -> Any:
    names = [f.name for f in fields(obj)]
    if key not in names:
        raise ConfigError(f"unknown config key '{dotted}'. Valid keys here: {', '.join(names)}")
    return getattr(obj, key)


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """A config section's resolved field annotations, cached (resolving them compiles every annotation
    string: uncached, that was most of the time of loading a run's config)."""
    if cls not in _FIELD_TYPES:
        _FIELD_TYPES[cls] = typing.get_type_hints(cls)
    return _FIELD_TYPES[cls]


def _coerce(obj: Any, key: str, value: Any, dotted: str) -> Any:
    """Check ``value`` against the field's annotated type, converting where unambiguous."""
    hint = _field_types(type(obj))[key]
    try:
        return _coerce_to(hint, value)
    except (TypeError, ValueError):
        raise ConfigError(f"'{dotted}' expects {_type_name(hint)}, got {value!r}") from None


def _coerce_to(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce_to(option, value)
            except (TypeError, ValueError):
                continue
        raise TypeError(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce_to(item, v) for v in value)
    if origin in (list, dict):
        if not isinstance(value, origin):
            raise TypeError(value)
        return value
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise TypeError(value)
        return int(value)
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    raise TypeError(value)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
