"""``scns train``: train a model (supervised objective, optionally with SCNS negatives)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scns.commands.options import Flag, add_run_arguments, config_from_args, train_flags


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
        populate=lambda p: add_run_arguments(p, train_flags(), resumable=True),  # see DeferredParser
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_training(args, train_flags())


def resume_overrides(
    args: argparse.Namespace, flags: tuple[Flag, ...], fixed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every option the user passed with ``--resume`` (flags, ``--set``, ``--no-progress``, the
    command's fixed keys), for :meth:`Trainer.resume` to apply or refuse; none is dropped."""
    from scns.config import ConfigError, parse_override

    if getattr(args, "config", None):
        raise ConfigError(
            "--config cannot be combined with --resume: the run's config.yaml is the base. Pass the "
            "options to change as flags or --set KEY=VALUE"
        )
    given = {f.key: getattr(args, f.key.replace(".", "__")) for f in flags}
    overrides = {k: v for k, v in given.items() if v is not None}
    overrides.update(parse_override(item) for item in args.overrides)
    if args.no_progress:
        overrides["train.progress"] = False
    overrides.update(fixed or {})
    return overrides


def run_training(
    args: argparse.Namespace, flags: tuple[Flag, ...], fixed: dict[str, Any] | None = None
) -> int:
    """Start (or with ``--resume``, continue) a run from parsed arguments; print its summary."""
    from scns.train import distributed as ddp
    from scns.train.engine import Trainer

    if args.resume:
        trainer = Trainer.resume(args.resume, resume_overrides(args, flags, fixed))
        info = trainer.resume_info
        if info is not None and info.finished:
            ignored = (
                f"; the options given ({', '.join(sorted(info.changes))}) were not applied"
                if info.changes
                else ""
            )
            print(
                f"scns: {args.resume} is finished ({info.epochs_done} of {trainer.config.train.epochs} epochs); "
                f"nothing to do{ignored}. Pass --epochs N with N > {info.epochs_done} to train further.",
                file=sys.stderr,
            )
            trainer.release()
            return 0
    else:
        config = config_from_args(args, flags)
        if fixed:
            config = config.with_overrides(fixed)
        trainer = Trainer.create(config)  # validates and fills the setting's defaults
    with ddp.session() as session:  # orderly DDP shutdown on success, error, Ctrl-C and SIGTERM
        session.release_on_exit(trainer.release_distributed)
        summary = trainer.fit()
    if ddp.env_is_rank_zero():
        print(json.dumps(summary, indent=2))
    return 0
