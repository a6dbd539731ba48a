"""``scns train``: train a model (supervised objective, optionally with SCNS negatives)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from scns.commands.options import TRAIN_FLAGS, Flag, add_run_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model; writes a run directory (config, metrics, checkpoints, summary)",
        description=(
            "Train a model. Examples:\n"
            "  scns train --dataset cifar10 --data-dir D --model resnet20 --epochs 30\n"
            "  scns train --dataset cifar10 --model resnet20 --sampler class_topk --similarity glove "
            "--top-k 3 --negatives 4096 --latent-mixup 256"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser, TRAIN_FLAGS)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.set_defaults(run=run, flags=TRAIN_FLAGS)


def run(args: argparse.Namespace) -> int:
    return run_training(args, args.flags)


def run_training(
    args: argparse.Namespace, flags: tuple[Flag, ...], fixed: dict[str, Any] | None = None
) -> int:
    """Start (or with ``--resume``, continue) a run from parsed arguments; print its summary."""
    from scns.train import distributed as ddp
    from scns.train.engine import Trainer
    from scns.train.validate import validate_config

    if args.resume:
        overrides = list(args.overrides)
        if args.train__epochs is not None:
            overrides.append(f"train.epochs={args.train__epochs}")
        if args.no_progress:
            overrides.append("train.progress=false")
        trainer = Trainer.resume(args.resume, overrides)
    else:
        config = config_from_args(args, flags)
        if fixed:
            config = config.with_overrides(fixed)
        trainer = Trainer.create(config)
    validate_config(trainer.config)
    with ddp.session() as session:  # orderly DDP shutdown on success, error, Ctrl-C and SIGTERM
        session.release_on_exit(trainer.release_distributed)
        summary = trainer.fit()
    if ddp.env_world_size() <= 1 or int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0
