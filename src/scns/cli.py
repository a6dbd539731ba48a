"""The ``scns`` command line: a thin front over ``scns.commands``.

Each sub-command lives in its own module under ``scns.commands`` exposing ``add_parser(subparsers)``;
the parser it adds sets ``run=<callable(args) -> int>``. Heavy imports happen inside ``run`` so that
``scns --help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scns import __version__

COMMAND_MODULES = (
    "demo",
    "train",
    "distill",
    "evaluate",
    "models",
    "datasets",
    "similarity",
    "grid",
    "report",
)


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scns",
        description="Semantically conditioned negative sampling for contrastive learning and distillation.",
    )
    parser.add_argument("--version", action="version", version=f"scns {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"scns.commands.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _is_user_error(err):
            print(f"scns {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise


def _is_user_error(err: Exception) -> bool:
    """Errors whose message already tells the user what to fix: no traceback for these."""
    from scns.config import ConfigError
    from scns.registry import UnknownNameError

    user_errors: tuple[type[BaseException], ...] = (
        UserError,
        ConfigError,
        UnknownNameError,
        FileNotFoundError,
    )
    for module, name in (
        ("scns.data", "DatasetError"),
        ("scns.train.checkpoint", "CheckpointError"),
        ("scns.similarity", "SimilarityError"),
        ("scns.train.engine", "NonFiniteLossError"),
    ):
        try:
            user_errors += (getattr(importlib.import_module(module), name),)
        except (ImportError, AttributeError):
            continue
    return isinstance(err, user_errors)


if __name__ == "__main__":
    sys.exit(main())
