"""``scns report``: a Markdown report with plots from finished run or grid directories."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="accuracy tables (mean +- std, paired CIs), learning curves, negative hardness, accuracy vs K",
    )
    parser.add_argument("dirs", nargs="+", help="grid directories (from `scns grid`) or run directories")
    parser.add_argument("--out", required=True, help="folder for README.md and the PNG plots")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scns.cli import UserError
    from scns.report import build_report, collect
    from scns.train.protocols import shipped_settings

    records = collect(args.dirs)
    if not records:
        raise UserError(f"no finished runs under {', '.join(args.dirs)}")
    path = build_report(records, args.out, list(args.dirs), ship=shipped_settings)
    print(f"report with {len(records)} runs written to {path}")
    return 0
