"""``scns distill``: train a student against a frozen teacher (student, kd, crd, crd+kd)."""

from __future__ import annotations

import argparse

from scns.commands.options import DISTILL_COMMAND_FLAGS, add_run_arguments
from scns.commands.train import run_training


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="distil a trained teacher into a student",
        description=(
            "Knowledge distillation. Example:\n"
            "  scns distill --dataset cifar100 --teacher runs/c100-resnet32x4 --student resnet8x4 --method crd \\\n"
            "      --sampler class_topk --similarity wordnet --top-k 10"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser, DISTILL_COMMAND_FLAGS)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_training(args, DISTILL_COMMAND_FLAGS, fixed={"train.objective": "distill"})
