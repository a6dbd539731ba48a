"""From a run's contrast config to a sampler: one resolution for every registered sampler.

A sampler's options are the fields of its ``Options`` dataclass. Each field takes, in order of
precedence, ``contrast.sampler_options.<sampler>.<field>``, then the ``contrast.<field>`` of the
same name (the common options every command has flags for, e.g. ``top_k``), then the field's
default. Nothing here names a sampler: adding one is a module with ``@SAMPLERS.register``.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from torch import Tensor

from scns.config import ConfigError, ContrastConfig
from scns.sampling.base import SamplerBase, SamplerOptions
from scns.sampling.mixture import MixtureOptions
from scns.sampling.registry import SAMPLERS


def sampler_class(name: str) -> type[SamplerBase]:
    """The registered sampler class ``name`` (unknown names list the choices)."""
    return SAMPLERS.get(name)  # type: ignore[return-value]


def configured_name(contrast: ContrastConfig) -> str:
    """The configured sampler, uniform when none is named."""
    return contrast.sampler or "uniform"


def common_key_choices(name: str) -> tuple[str, ...] | None:
    """The allowed values of the common key ``contrast.<name>``, as declared by the ``Literal``
    annotation of a sampler ``Options`` field of that name (None: no sampler declares a fixed set)."""
    for sampler in SAMPLERS.names():
        options_cls = getattr(SAMPLERS.get(sampler), "Options", None)
        if options_cls is None or name not in {f.name for f in dataclasses.fields(options_cls)}:
            continue
        hint = typing.get_type_hints(options_cls).get(name)
        if typing.get_origin(hint) is typing.Literal:
            return tuple(str(v) for v in typing.get_args(hint))
    return None


def sampler_options(name: str, contrast: ContrastConfig) -> SamplerOptions:
    """Sampler ``name``'s validated options for this config (``ConfigError`` says what is wrong)."""
    options_cls = sampler_class(name).Options
    names = {f.name for f in dataclasses.fields(options_cls)}
    own = dict(contrast.sampler_options.get(name, {}) or {})
    unknown = sorted(set(own) - names)
    if unknown:
        raise ConfigError(
            f"contrast.sampler_options.{name} has unknown option(s) {unknown}; {name} takes: "
            f"{', '.join(sorted(names)) or 'no options'}"
        )
    values: dict[str, Any] = {n: getattr(contrast, n) for n in names if hasattr(contrast, n)}
    values.update(own)
    try:
        return options_cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"sampler {name}: {err} {_where(name)}") from None


def _where(name: str) -> str:
    return f"(an option is set by contrast.<option> or contrast.sampler_options.{name}.<option>)"


def component_names(contrast: ContrastConfig) -> list[str]:
    """Every sampler a config uses: the sampler itself and, for a mixture, its components."""
    name = configured_name(contrast)
    options = sampler_options(name, contrast)
    if isinstance(options, MixtureOptions):
        return [name, *(part for part, _ in options.parts())]
    return [name]


def needs_similarity(contrast: ContrastConfig) -> bool:
    """Whether some sampler of the config draws by class similarity."""
    return any(sampler_class(n).needs_similarity for n in component_names(contrast))


def refreshes_from_features(contrast: ContrastConfig) -> bool:
    """Whether some sampler of the config rebuilds a table from features (the memory bank)."""
    return any(sampler_class(n).refreshes_from_features for n in component_names(contrast))


def validate_sampler_config(contrast: ContrastConfig, num_classes: int) -> None:
    """Every option of every sampler the config uses, checked before any data loads (C classes)."""
    for name in component_names(contrast):
        if sampler_class(name).needs_similarity and not contrast.similarity:
            raise ConfigError(
                f"sampler {name} needs contrast.similarity (--similarity glove|wordnet|text|hierarchy|"
                "bank|prototypes:RUN_DIR|teacher:prototypes, or a blend such as glove:0.5+bank:0.5)"
            )
        try:
            sampler_options(name, contrast).check_classes(num_classes)
        except ValueError as err:
            raise ConfigError(f"sampler {name}: {err} {_where(name)}") from None
    for name in contrast.sampler_options:
        sampler_class(name)  # options for an unknown sampler: list the choices


def build_configured(
    contrast: ContrastConfig, labels: Tensor, similarity: Tensor | None, name: str | None = None
) -> SamplerBase:
    """The sampler ``name`` (default: the configured one) over training labels [N]."""
    name = name or configured_name(contrast)
    cls = sampler_class(name)
    options = sampler_options(name, contrast)
    try:
        return cls.from_options(
            labels,
            options,
            similarity=similarity,
            build=lambda part: build_configured(contrast, labels, similarity, part),
        )
    except ValueError as err:
        raise ConfigError(f"sampler {name}: {err}") from None
