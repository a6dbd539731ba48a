"""``scns grid``: run a named protocol's grid of runs, resumably, into one directory."""

from __future__ import annotations

import argparse
import datetime
import os
import re

from scns.commands.options import add_override_argument


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grid",
        help="run a protocol's grid of runs (resumable; finished runs are skipped)",
        description=(
            "Run a protocol (cpu-quick, gpu, paper, decisive, paper-lite) into DIR/runs/<cell>. A re-run skips finished runs and "
            "resumes an unfinished one, so a grid can be spread over several sittings. Several workers (one per "
            "GPU, or per machine on a shared filesystem) may run the same DIR at once: each claims the cell it "
            "runs and skips cells other workers hold. Results accumulate in "
            "DIR/results.json; `scns report DIR` turns them into tables and plots."
        ),
    )
    parser.add_argument("protocol", help="cpu-quick | gpu | paper | decisive | paper-lite")
    parser.add_argument("--out", required=True, help="grid directory")
    parser.add_argument("--data-dir", help="dataset folder (default: $SCNS_DATA_DIR)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", help="run only cells whose name contains this text (and their teachers)")
    parser.add_argument(
        "--smoke", action="store_true", help="1 epoch of 2 steps per cell: checks the grid end to end"
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the cells, their state and the estimated minutes each has left (see --deadline), run nothing",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="run the protocol's runs for these seeds instead of its own (teachers are trained once)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how often a worker whose cells are all held by other workers looks again (default 30)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads of this worker (default: torch's, one per core). On a CPU machine, W workers "
        "with --threads CORES/W each keep the cores busier with small networks (BENCHMARKS.md s. 8: two "
        "1-thread workers trained resnet8 students at 1.30x the rate of one 2-thread worker)",
    )
    parser.add_argument(
        "--deadline",
        metavar="WHEN",
        help="start only the cells whose estimated training time fits before WHEN, a clock time HH:MM "
        "(its next occurrence, local time) or a duration from now (90m, 2.5h, 1h30m); defer the rest. "
        "For a sitting or a lease whose end would lose an unfinished cell's checkpoint. The estimate "
        "comes from finished runs of the same step cost in DIR, timed on the same kind of machine (a cell "
        "with none is deferred)",
    )
    add_override_argument(parser, "config override applied to every cell (repeatable)")
    parser.set_defaults(run=run)


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_deadline(text: str, now: datetime.datetime) -> datetime.datetime:
    """``text`` as a moment after ``now``: ``HH:MM`` (its next occurrence) or a duration (``90m``, ``2.5h``,
    ``1h30m``, ``45s``). ValueError with the accepted forms otherwise."""
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if clock:
        hour, minute = int(clock[1]), int(clock[2])
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r} is not a clock time (HH:MM, 00:00 to 23:59)")
        moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return moment if moment > now else moment + datetime.timedelta(days=1)
    parts = _DURATION.fullmatch(text.strip())
    if not text.strip() or parts is None or not any(parts.groups()):
        raise ValueError(f"{text!r} is neither a clock time (HH:MM) nor a duration (90m, 2.5h, 1h30m, 45s)")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    return now + datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def run(args: argparse.Namespace) -> int:
    from scns.config import Config, parse_override
    from scns.train.grid import SMOKE_OVERRIDES, grid_listing, run_grid
    from scns.train.protocols import get_protocol, with_seeds

    cells = get_protocol(args.protocol)
    if args.seeds is not None:
        try:
            cells = with_seeds(cells, args.seeds)
        except ValueError as err:
            raise SystemExit(f"scns grid: --seeds: {err}") from None
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"scns grid: --threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if args.list:
        print("\n".join(grid_listing(cells, args.out)))
        return 0
    deadline = None
    if args.deadline is not None:
        try:
            deadline = parse_deadline(args.deadline, datetime.datetime.now()).timestamp()
        except ValueError as err:
            raise SystemExit(f"scns grid: --deadline: {err}") from None
    if not args.poll > 0:
        raise SystemExit(f"scns grid: --poll must be a positive number of seconds, got {args.poll}")
    overrides: dict = {"train.device": args.device}
    data_dir = args.data_dir or os.environ.get("SCNS_DATA_DIR")
    if data_dir:
        overrides["data.data_dir"] = data_dir
    if args.smoke:
        overrides.update(SMOKE_OVERRIDES)
    overrides.update(parse_override(item) for item in args.overrides)
    Config().with_overrides(overrides)  # reject bad keys or values before any run
    from scns.train import distributed as ddp

    with ddp.session():  # under torchrun: one orderly DDP shutdown after the last cell
        status = run_grid(
            cells, args.out, overrides=overrides, only=args.only, poll_s=args.poll, deadline=deadline
        )
    if not ddp.env_is_rank_zero():  # under torchrun rank 0 reports for the job
        return 1 if status["failed"] else 0
    print(
        f"finished {len(status['finished'])}, already done {len(status['skipped'])}, "
        f"deferred {len(status['deferred'])}, failed {len(status['failed'])}"
    )
    for name, why in status["deferred"].items():
        print(f"  deferred {name}: {why}")
    for name, error in status["failed"].items():
        print(f"  FAILED {name}: {error}")
    return 1 if status["failed"] else 0
