"""``scns presets``: the configuration presets shipped with scns (usable as ``--config NAME``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("presets", help="list the shipped presets (use one as --config NAME)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scns.config import PRESETS_DIR, preset_names, preset_path

    print(f"presets in {PRESETS_DIR} (scns train/distill --config NAME):")
    for name in preset_names():
        first = preset_path(name).read_text().splitlines()[0]
        note = first.lstrip("# ").strip() if first.startswith("#") else ""
        print(f"  {name:<36} {note[:90]}")
    return 0
