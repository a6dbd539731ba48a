"""``scns models``: the model zoo with parameter counts and feature sizes."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the model zoo (parameters, feature size)")
    parser.add_argument(
        "--num-classes", type=int, default=100, help="classes for the parameter count (default 100)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scns.models import list_models, model_summary

    print(f"{'model':<14} {'params':>10} {'features':>9}   (with {args.num_classes} classes)")
    for name in list_models():
        info = model_summary(name, args.num_classes)
        print(f"{name:<14} {info['params'] / 1e6:>9.2f}M {info['feature_dim']:>9}")
    return 0
