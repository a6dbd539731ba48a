"""Command-line flags that map onto config keys, shared by the commands that start runs."""

from __future__ import annotations

import argparse
import functools
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from scns.config import Config


@dataclass(frozen=True)
class Flag:
    """A CLI flag that sets one dotted config key."""

    flag: str
    key: str
    help: str
    type: Any = None
    action: str | None = None
    nargs: str | int | None = None
    const: Any = None
    choices: tuple[str, ...] | None = None


def registry_choices() -> dict[str, tuple[str, ...]]:
    """Allowed values of the options whose names come from a registry or a module's own table (the
    schema cannot list them: ``scns.config`` sits below those modules). Read, not copied."""
    from scns.losses import LOSSES
    from scns.memory import BANK_DTYPES
    from scns.models.frozen import TEACHER_MODES
    from scns.objectives.build import OBJECTIVES
    from scns.objectives.distill import METHODS
    from scns.sampling import SAMPLERS
    from scns.train.schedule import SCHEDULES

    return {
        "train.objective": tuple(OBJECTIVES),
        "optim.schedule": tuple(SCHEDULES),
        "contrast.sampler": tuple(SAMPLERS.names()),
        "contrast.loss": tuple(n for n in LOSSES.names() if n in ("nce", "infonce")),
        "contrast.bank_dtype": tuple(BANK_DTYPES),
        "distill.method": tuple(METHODS),
        "distill.teacher_mode": tuple(TEACHER_MODES),
    }


def setting_defaults_help() -> dict[str, str]:
    """The defaults that depend on the setting, worded for help, from the tables that define them."""
    from scns.objectives.build import DISTILL_DEFAULTS, SUPERVISED_DEFAULTS
    from scns.objectives.distill import DEFAULT_WEIGHTS

    def per_method(column: int) -> str:
        return ", ".join(f"{m} {w[column]:g}" for m, w in DEFAULT_WEIGHTS.items())

    return {
        "contrast.weight": f"supervised {SUPERVISED_DEFAULTS['weight']:g}; distillation {per_method(2)}",
        "contrast.loss": f"supervised {SUPERVISED_DEFAULTS['loss']}; distillation {DISTILL_DEFAULTS['loss']}",
        "contrast.positive": (
            f"supervised {SUPERVISED_DEFAULTS['positive']}; distillation {DISTILL_DEFAULTS['positive']}"
        ),
        "distill.ce_weight": per_method(0),
        "distill.kd_weight": per_method(1),
    }


def schema_flags(sections: tuple[str, ...]) -> tuple[Flag, ...]:
    """The CLI flags declared in the config schema (``scns.config.option(..., flag=...)``) of
    ``sections``, in schema order.

    The flag's type comes from the field's annotation (``X | None`` -> X, ``tuple[X, ...]`` -> X with
    ``nargs``), a boolean flag stores True (``--no-...``: False), and the help ends with the default:
    the schema's, or for the options left ``None`` the setting's (from the tables that define it).
    """
    from scns.sampling.configured import common_key_choices

    choices_from_registry = registry_choices()
    setting_help = setting_defaults_help()
    out: list[Flag] = []
    for section in sections:
        section_cls = type(getattr(Config(), section))
        hints = typing.get_type_hints(section_cls)
        for f in fields(section_cls):
            flag = f.metadata.get("flag")
            key = f"{section}.{f.name}"
            if flag is None:
                continue
            hint = _without_none(hints[f.name])
            choices = (
                f.metadata.get("choices")
                or choices_from_registry.get(key)
                or (common_key_choices(f.name) if section == "contrast" else None)
            )
            help_text = f.metadata["help"]
            if choices:
                help_text += f" ({' | '.join(choices)})"
            if key in setting_help:
                help_text += f" [default: {setting_help[key]}]"
            elif f.default is not None and hint is not bool and f.default != ():
                shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
                help_text += f" [default: {shown}]"
            if hint is bool:
                negative = flag.startswith("--no-")
                out.append(Flag(flag, key, help_text, action="store_const", const=not negative))
                continue
            nargs = f.metadata.get("nargs")
            item = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
            out.append(Flag(flag, key, help_text, type=item, nargs=nargs, choices=choices))
    return tuple(out)


def _without_none(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


#: Flags outside the schema's own declarations: an alias, and a sampler's own option.
STUDENT_FLAG = Flag("--student", "model.name", "student architecture (see `scns models`)")
SKIP_NEAREST_FLAG = Flag(
    "--skip-nearest",
    "contrast.sampler_options.sample_topk.skip_nearest",
    "sample_topk: never draw this fraction of each row's nearest neighbours (false-negative guard)",
    type=float,
)


@functools.cache
def _run_schema_flags() -> tuple[Flag, ...]:
    return schema_flags(("data", "model", "optim", "train", "contrast", "distill"))


def run_flags() -> tuple[Flag, ...]:
    """The flags shared by every command that starts a run: data, model, optimiser, training."""
    return tuple(
        f
        for f in _run_schema_flags()
        if f.key.split(".")[0] in ("data", "model", "optim", "train") and f.key != "train.objective"
    )


def contrast_flags() -> tuple[Flag, ...]:
    """The contrastive term's flags (sampler, similarity, bank, loss, schedules)."""
    return tuple(f for f in _run_schema_flags() if f.key.startswith("contrast.")) + (SKIP_NEAREST_FLAG,)


def train_flags() -> tuple[Flag, ...]:
    """``scns train``'s config flags."""
    objective = next(f for f in _run_schema_flags() if f.key == "train.objective")
    return run_flags() + contrast_flags() + (objective,)


def distill_command_flags() -> tuple[Flag, ...]:
    """``scns distill``'s config flags: ``--student`` names the model, the objective is fixed."""
    distill = tuple(f for f in _run_schema_flags() if f.key.startswith("distill."))
    return tuple(f for f in run_flags() if f.flag != "--model") + contrast_flags() + (STUDENT_FLAG,) + distill


class DeferredParser(argparse.ArgumentParser):
    """A sub-command's parser whose arguments are added on first use (parsing or help).

    The run commands' flags list their allowed values from the registries, which import torch;
    deferring them keeps ``scns --version``, ``scns --help`` and the light commands free of that
    import, while the command being parsed gets every flag, choice refusal and help line.
    ``populate(parser)`` adds the arguments; it runs at most once.
    """

    def __init__(
        self, *args: Any, populate: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self._populate = populate

    def _ensure_populated(self) -> None:
        populate, self._populate = self._populate, None
        if populate is not None:
            populate(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._ensure_populated()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._ensure_populated()
        return super().format_help()

    def format_usage(self) -> str:
        self._ensure_populated()
        return super().format_usage()


def add_override_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_run_arguments(
    parser: argparse.ArgumentParser, flags: tuple[Flag, ...], resumable: bool = False
) -> None:
    """Add ``--config``, ``--set``, the given config flags (all default to 'not given') and, when
    ``resumable``, ``--resume RUN_DIR``."""
    parser.add_argument(
        "--config",
        help="a YAML file, or a shipped preset's name (`scns presets`, e.g. cifar100/resnet56-resnet20); flags and --set override it",
    )
    add_override_argument(parser, "dotted config override, e.g. --set optim.lr=0.1 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    for flag in flags:
        kwargs: dict[str, Any] = {"help": flag.help, "dest": flag.key.replace(".", "__"), "default": None}
        if flag.action:
            kwargs["action"] = flag.action
            if flag.action == "store_const":
                kwargs["const"] = flag.const
        else:
            kwargs["type"] = flag.type or str
            if flag.nargs:
                kwargs["nargs"] = flag.nargs
            kwargs["metavar"] = flag.key.rsplit(".", 1)[-1].upper()
            if flag.choices:
                kwargs["choices"] = flag.choices
        parser.add_argument(flag.flag, **kwargs)
    if resumable:
        parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")


def config_from_args(args: argparse.Namespace, flags: tuple[Flag, ...], base: Config | None = None) -> Config:
    """Defaults <- ``--config`` <- flags given <- ``--set`` overrides; data_dir falls back to $SCNS_DATA_DIR."""
    config = base or (Config.load(args.config) if getattr(args, "config", None) else Config())
    given = {f.key: getattr(args, f.key.replace(".", "__")) for f in flags}
    given = {k: v for k, v in given.items() if v is not None}
    config = config.with_overrides(given).with_overrides(getattr(args, "overrides", []))
    if getattr(args, "no_progress", False):
        config = config.with_overrides({"train.progress": False})
    if config.data.data_dir is None and os.environ.get("SCNS_DATA_DIR"):
        config = config.with_overrides({"data.data_dir": os.environ["SCNS_DATA_DIR"]})
    return config
