"""The CLI flags are generated from the config schema: each option is declared once."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from scns.commands.options import (
    Flag,
    add_run_arguments,
    config_from_args,
    distill_command_flags,
    registry_choices,
    train_flags,
)
from scns.config import Config
from scns.sampling.configured import common_key_choices

TRAIN_FLAGS = train_flags()
DISTILL_COMMAND_FLAGS = distill_command_flags()


def declared_flags() -> dict[str, str]:
    """{dotted key: flag} for every schema field declared with a flag."""
    out = {}
    defaults = Config()
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(getattr(defaults, section.name)):
            if "flag" in f.metadata:
                out[f"{section.name}.{f.name}"] = f.metadata["flag"]
    return out


def test_every_declared_flag_reaches_the_commands():
    train = {f.key: f.flag for f in TRAIN_FLAGS}
    distill = {f.key: f.flag for f in DISTILL_COMMAND_FLAGS}
    for key, flag in declared_flags().items():
        if key.startswith("distill."):
            assert distill[key] == flag
        elif key == "train.objective":
            assert train[key] == flag and key not in distill  # distill fixes the objective
        elif key == "model.name":
            assert train[key] == "--model" and distill[key] == "--student"
        else:
            assert train[key] == flag and distill[key] == flag


def parser(flags) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_run_arguments(p, flags)
    return p


def test_help_states_the_schema_default():
    defaults = Config()
    for flag in TRAIN_FLAGS:
        section, _, name = flag.key.partition(".")
        if "." in name:  # a sampler's own option, outside the schema
            continue
        value = getattr(getattr(defaults, section), name)
        if value is None or isinstance(value, bool) or value == ():
            continue
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert f"[default: {shown}]" in flag.help, flag.flag


@pytest.mark.parametrize(
    ("argv", "key", "value"),
    [
        (["--lr", "0.2"], "optim.lr", 0.2),
        (["--milestones", "3", "5"], "optim.milestones", (3, 5)),
        (["--no-bank-prefill"], "contrast.bank_prefill", False),
        (["--nesterov"], "optim.nesterov", True),
        (["--mixture-ramp", "1", "4"], "contrast.mixture_ramp", (1, 4)),
        (["--ties", "id"], "contrast.ties", "id"),
        (["--skip-nearest", "0.02"], "contrast.sampler_options", {"sample_topk": {"skip_nearest": 0.02}}),
    ],
)
def test_generated_flags_set_their_keys(argv, key, value):
    config = config_from_args(parser(TRAIN_FLAGS).parse_args(argv), TRAIN_FLAGS)
    section, name = key.split(".")
    assert getattr(getattr(config, section), name) == value
    # nothing else moved from the defaults
    untouched = config_from_args(parser(TRAIN_FLAGS).parse_args([]), TRAIN_FLAGS)
    assert config.with_overrides({key: getattr(getattr(untouched, section), name)}) == untouched


def test_choices_come_from_where_the_values_are_defined():
    from scns.sampling.class_topk import ClassTopKOptions

    choices = {f.key: f.choices for f in TRAIN_FLAGS + DISTILL_COMMAND_FLAGS}
    assert choices["contrast.ties"] == common_key_choices("ties") == ("share", "id")
    assert ClassTopKOptions.__annotations__["weighting"]  # declared there, as a Literal
    assert choices["contrast.weighting"] == ("uniform", "softmax")
    for key, values in registry_choices().items():
        assert choices[key] == values
    with pytest.raises(SystemExit):
        parser(TRAIN_FLAGS).parse_args(["--weighting", "sigmoid"])


def test_building_the_cli_parser_does_not_import_torch(fresh_python):
    """`scns --version`, `scns --help` and the light commands stay instant: the run commands' flags
    (whose choices come from the registries, which import torch) are added only when parsed."""
    code = "import sys, scns.cli; scns.cli.build_parser(); print('torch' in sys.modules)"
    assert fresh_python(code).strip() == "False"


@pytest.mark.parametrize(("command", "flags"), [("train", train_flags), ("distill", distill_command_flags)])
def test_deferred_command_flags_appear_in_help_and_parse(command, flags, capsys):
    from scns.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for flag in flags() + (Flag("--resume", "", ""),):
        assert flag.flag in help_text, flag.flag
    assert "(uniform | softmax)" in help_text  # --weighting lists its choices
    args = build_parser().parse_args([command, "--lr", "0.2", "--weighting", "softmax"])
    assert args.optim__lr == 0.2 and args.contrast__weighting == "softmax"
