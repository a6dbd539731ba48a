"""Command-line flags that map onto config keys, shared by the commands that start runs."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
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
    nargs: str | None = None


RUN_FLAGS: tuple[Flag, ...] = (
    Flag("--dataset", "data.dataset", "dataset name (see `scns datasets`)"),
    Flag("--data-dir", "data.data_dir", "folder holding the dataset files (default: $SCNS_DATA_DIR)"),
    Flag(
        "--download", "data.download", "download the dataset into --data-dir if missing", action="store_true"
    ),
    Flag("--batch-size", "data.batch_size", "training batch size", type=int),
    Flag("--model", "model.name", "architecture (see `scns models`)"),
    Flag("--epochs", "train.epochs", "number of epochs", type=int),
    Flag("--lr", "optim.lr", "base learning rate", type=float),
    Flag("--schedule", "optim.schedule", "multistep | cosine | onecycle | constant"),
    Flag(
        "--milestones",
        "optim.milestones",
        "multistep epochs at which lr is multiplied by gamma",
        type=int,
        nargs="+",
    ),
    Flag("--weight-decay", "optim.weight_decay", "SGD weight decay", type=float),
    Flag("--momentum", "optim.momentum", "SGD momentum", type=float),
    Flag("--nesterov", "optim.nesterov", "use Nesterov momentum", action="store_true"),
    Flag("--label-smoothing", "optim.label_smoothing", "cross-entropy label smoothing", type=float),
    Flag("--seed", "train.seed", "random seed", type=int),
    Flag("--device", "train.device", "auto | cpu | cuda | cuda:N"),
    Flag(
        "--deterministic",
        "train.deterministic",
        "deterministic kernels (exact resume on GPU)",
        action="store_true",
    ),
    Flag("--out-dir", "train.out_dir", "parent folder of run directories"),
    Flag("--name", "train.name", "run directory name (default: generated)"),
    Flag("--skip-nonfinite", "train.skip_nonfinite", "tolerate up to N steps with a NaN/inf loss", type=int),
)


def add_run_arguments(parser: argparse.ArgumentParser, flags: tuple[Flag, ...] = RUN_FLAGS) -> None:
    """Add ``--config``, ``--set`` and the given config flags (all default to 'not given')."""
    parser.add_argument("--config", help="YAML preset (see configs/); flags and --set override it")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted config override, e.g. --set optim.lr=0.1 (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    for flag in flags:
        kwargs: dict[str, Any] = {"help": flag.help, "dest": flag.key.replace(".", "__"), "default": None}
        if flag.action:
            kwargs["action"] = flag.action
        else:
            kwargs["type"] = flag.type or str
            if flag.nargs:
                kwargs["nargs"] = flag.nargs
        parser.add_argument(flag.flag, **kwargs)


def config_from_args(
    args: argparse.Namespace, flags: tuple[Flag, ...] = RUN_FLAGS, base: Config | None = None
) -> Config:
    """Defaults <- ``--config`` <- flags given <- ``--set`` overrides; data_dir falls back to $SCNS_DATA_DIR."""
    config = base or (Config.load(args.config) if getattr(args, "config", None) else Config())
    given = {f.key: getattr(args, f.key.replace(".", "__")) for f in flags}
    given = {k: v for k, v in given.items() if v is not None and v is not False}
    config = config.with_overrides(given).with_overrides(getattr(args, "overrides", []))
    if getattr(args, "no_progress", False):
        config = config.with_overrides({"train.progress": False})
    if config.data.data_dir is None and os.environ.get("SCNS_DATA_DIR"):
        config = config.with_overrides({"data.data_dir": os.environ["SCNS_DATA_DIR"]})
    return config
