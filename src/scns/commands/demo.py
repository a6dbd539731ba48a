"""``scns demo``: train a small model on the bundled digits data, offline, in about a minute."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="offline showcase on the bundled digits data (no download)",
        description="Train resnet8 on scikit-learn's bundled digits (3x32x32) and report test accuracy.",
    )
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out-dir", help="keep the run directory here (default: a temporary folder)")
    parser.set_defaults(run=run)


def demo_config(model: str, epochs: int, seed: int, device: str):  # -> Config
    from scns.config import Config

    return Config().with_overrides(
        {
            "data.dataset": "digits",
            "data.batch_size": 64,
            "model.name": model,
            "optim.lr": 0.05,
            "optim.schedule": "onecycle",
            "optim.weight_decay": 5e-4,
            "train.epochs": epochs,
            "train.seed": seed,
            "train.device": device,
        }
    )


def run(args: argparse.Namespace) -> int:
    from scns.train.engine import Trainer
    from scns.train.validate import validate_config

    config = demo_config(args.model, args.epochs, args.seed, args.device)
    validate_config(config)
    with tempfile.TemporaryDirectory(prefix="scns-demo-") as tmp:
        run_dir = Path(args.out_dir or tmp) / f"demo-{args.model}-s{args.seed}"
        started = time.perf_counter()
        summary = Trainer.create(config, run_dir).fit()
        wall = time.perf_counter() - started
    print(
        f"\nscns demo: {args.model} on digits, {args.epochs} epochs, seed {args.seed}: "
        f"test top-1 {summary['final_top1']:.2f}% (best {summary['best_top1']:.2f}%) in {wall:.0f} s"
    )
    return 0
