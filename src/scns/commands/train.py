"""``scns train``: train a model (supervised objective) and write a run directory."""

from __future__ import annotations

import argparse
import json

from scns.commands.options import add_run_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model; writes a run directory (config, metrics, checkpoints, summary)",
        description="Train a model. Example: scns train --dataset cifar10 --data-dir D --model resnet20 --epochs 30",
    )
    add_run_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
        trainer = Trainer.create(config_from_args(args))
    validate_config(trainer.config)
    summary = trainer.fit()
    print(json.dumps(summary, indent=2))
    return 0
