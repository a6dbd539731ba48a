"""``scns distill``: train a student against a frozen teacher (student, kd, crd, crd+kd)."""

from __future__ import annotations

import argparse

from scns.commands.options import add_run_arguments, distill_command_flags
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
        populate=lambda p: add_run_arguments(
            p, distill_command_flags(), resumable=True
        ),  # see DeferredParser
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_training(args, distill_command_flags(), fixed={"train.objective": "distill"})
