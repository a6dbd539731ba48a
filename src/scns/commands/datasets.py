"""``scns datasets``: the datasets scns reads, with their geometry and where they come from."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("datasets", help="list the supported datasets")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scns.data import get_spec, list_datasets

    print(f"{'dataset':<14} {'classes':>7} {'size':>5} {'pad':>4}  needs --data-dir")
    for name in list_datasets():
        spec = get_spec(name)
        classes = "any" if spec.num_classes is None else spec.num_classes  # folder: its class folders
        print(
            f"{name:<14} {classes:>7} {spec.image_size:>5} {spec.crop_padding:>4}  {'yes' if spec.needs_data_dir else 'no (bundled)'}"
        )
    return 0
