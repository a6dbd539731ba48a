"""The similarity source registry and source specs such as ``"wordnet:lch"``.

A source is an object with

* ``name``: its registry name,
* ``fingerprint() -> dict | None``: JSON-able description of everything that changes its result
  (options, data versions, checkpoint hashes); ``None`` means "do not cache" (e.g. a custom
  in-memory encoder with no stable identity),
* ``compute(class_names) -> Tensor [C, C]``: raw similarity scores.

Factories are registered with :func:`register_source`; a spec string ``NAME[:ARG][:KEY=VALUE...]``
builds one, ``ARG`` filling the source's main option (``prototypes:RUN_DIR`` sets ``checkpoint``,
``wordnet:lch`` sets ``metric``, ``hierarchy:glove`` sets ``tiebreak``) and ``KEY=VALUE`` any other
(``confusion:RUN_DIR:split=test``). Composite specs (``wordnet+glove``, ``glove:0.5+bank:0.5``) are
parsed one level up, by :class:`scns.similarity.spec.SimilaritySpec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from torch import Tensor

from scns.registry import Registry
from scns.similarity.base import SimilarityError


class SimilaritySource(Protocol):
    name: str

    def fingerprint(self) -> dict[str, Any] | None: ...

    def compute(self, class_names: list[str]) -> Tensor: ...


SIMILARITY_SOURCES: Registry[SimilaritySource] = Registry("similarity source")
_SPEC_ARGS: dict[str, str] = {}


def register_source(
    name: str, *, spec_arg: str | None = None
) -> Callable[[Callable[..., SimilaritySource]], Callable[..., SimilaritySource]]:
    """Register a source factory; ``spec_arg`` is the option that ``NAME:ARG`` sets."""

    def decorator(factory: Callable[..., SimilaritySource]) -> Callable[..., SimilaritySource]:
        SIMILARITY_SOURCES.register(name)(factory)
        if spec_arg is not None:
            _SPEC_ARGS[name] = spec_arg
        return factory

    return decorator


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"NAME[:ARG][:KEY=VALUE...]"`` -> ``(name, {main_option: ARG, KEY: VALUE, ...})``.

    Trailing ``KEY=VALUE`` fields set other options as strings (the factory converts them), e.g.
    ``confusion:runs/r1:split=test`` or ``teacher:confusion:temperature=4``; the fields before
    them, joined by ``:``, are ARG (so ``hierarchy:wordnet:lch`` keeps ``wordnet:lch`` whole).

    Raises:
        SimilarityError: unknown name, an ARG for a source that takes none, an empty key or value.
    """
    name, sep, rest = str(spec).partition(":")
    if name not in SIMILARITY_SOURCES:
        raise SimilarityError(SIMILARITY_SOURCES.unknown_message(name))
    if not sep:
        return name, {}
    fields = rest.split(":")
    options: dict[str, Any] = {}
    while fields and "=" in fields[-1]:
        key, _, value = fields.pop().partition("=")
        if not key or not value:
            raise SimilarityError(f"'{spec}': option fields are KEY=VALUE, got '{key}={value}'")
        if key in options:
            raise SimilarityError(f"'{spec}' sets {key} twice")
        options[key] = value
    arg = ":".join(fields)
    if not fields:
        return name, dict(reversed(options.items()))
    if name not in _SPEC_ARGS:
        raise SimilarityError(
            f"similarity source '{name}' takes no ':ARG' (got '{spec}'); write just '{name}'"
        )
    if not arg:
        raise SimilarityError(f"'{spec}': give the {_SPEC_ARGS[name]} after the colon")
    if _SPEC_ARGS[name] in options:
        raise SimilarityError(f"'{spec}' sets {_SPEC_ARGS[name]} twice")
    return name, {_SPEC_ARGS[name]: arg, **dict(reversed(options.items()))}


def spec_help() -> str:
    """One line per source: how to write its spec."""
    lines = []
    for name in SIMILARITY_SOURCES.names():
        arg = _SPEC_ARGS.get(name)
        lines.append(f"{name}:{arg.upper()}" if arg else name)
    return ", ".join(lines)


def build_source(spec: str, context: Mapping[str, Any] | None = None, **options: Any) -> SimilaritySource:
    """Build the source named by ``spec`` with ``options``.

    Args:
        spec: ``NAME[:ARG]``.
        context: facts about the classes that a source may use if its factory accepts them
            (``wnids``, ``groups``, ``data_dir``, ``device``, ...); unlike ``options``, keys a
            factory does not take are ignored. A factory with a ``context`` parameter gets it whole
            (hierarchy passes it on to its tie-break source).
        options: the factory's keyword arguments; an unknown one is an error listing valid ones.
    """
    name, spec_options = parse_spec(spec)
    clash = set(spec_options) & set(options)
    if clash:
        raise SimilarityError(
            f"'{spec}' sets {', '.join(sorted(clash))} twice (in the spec and as an option)"
        )
    options = {**spec_options, **options}
    factory = SIMILARITY_SOURCES.get(name)
    params = inspect.signature(factory).parameters
    accepted = [p for p in params if p != "context"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise SimilarityError(
            f"similarity source '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
            f"valid options: {', '.join(accepted) or '(none)'}"
        )
    for key, value in (context or {}).items():
        if key in accepted and key not in options and value is not None:
            options[key] = value
    if "context" in params:
        options["context"] = dict(context or {})
    return factory(**options)
