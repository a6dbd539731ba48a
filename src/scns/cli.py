"""The ``scns`` command line: a thin front over ``scns.commands``.

Each sub-command lives in its own module under ``scns.commands`` exposing ``add_parser(subparsers)``;
the parser it adds sets ``run=<callable(args) -> int>``. Heavy imports happen inside ``run`` so that
``scns --help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from scns import __version__
from scns.commands.options import DeferredParser
from scns.errors import ScnsError

COMMAND_MODULES = (
    "demo",
    "train",
    "distill",
    "evaluate",
    "models",
    "datasets",
    "presets",
    "similarity",
    "grid",
    "report",
)


class UserError(ScnsError):
    """An error caused by the user's input; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scns",
        description="Semantically conditioned negative sampling for contrastive learning and distillation.",
    )
    parser.add_argument("--version", action="version", version=f"scns {__version__}")
    # sub-commands' arguments may be added on first use (DeferredParser): no command pays for another's
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=DeferredParser)
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
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader closed the pipe (`scns presets | head`): what it wanted was printed; stop quietly,
        # and keep Python from reporting the failed flush of stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        if _is_user_error(err):
            print(f"scns {args.command}: error: {err}", file=sys.stderr)
            return err.exit_code if isinstance(err, ScnsError) else 2
        if isinstance(err, OSError) and err.errno is not None:
            print(f"scns {args.command}: error: {describe_os_error(err)}", file=sys.stderr)
            return 1
        raise


#: What to do about an OSError that the environment, not the code, caused.
_OS_ERROR_ADVICE = {
    errno.ENOSPC: "free space on that disk (or choose another --out-dir), then continue with --resume RUN_DIR: "
    "files already written are intact",
    errno.EDQUOT: "the disk quota is exhausted: free space, then continue with --resume RUN_DIR",
    errno.EROFS: "that file system is read-only: choose a writable --out-dir",
    errno.EACCES: "no permission to write there: choose another --out-dir or fix the permissions",
    errno.EPERM: "no permission to write there: choose another --out-dir or fix the permissions",
    errno.ENOTDIR: "a file stands where a directory is needed: choose another --out-dir",
    errno.EEXIST: "a file stands where a directory is needed: choose another --out-dir",
    errno.EISDIR: "a directory stands where a file is needed",
    errno.EIO: "the disk reported an I/O error: check it",
}


def describe_os_error(err: OSError) -> str:
    """One line: what failed, on which file, and what to do."""
    where = f": {err.filename}" if err.filename else ""
    advice = _OS_ERROR_ADVICE.get(err.errno or 0)
    return f"{err.strerror or err}{where}" + (f". {advice[0].upper()}{advice[1:]}" if advice else "")


def _is_user_error(err: Exception) -> bool:
    """Errors whose message already tells the user what to fix: no traceback for these."""
    return isinstance(err, (ScnsError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
