"""``scns evaluate``: top-1/top-5 accuracy of a trained checkpoint on its dataset's test split."""

from __future__ import annotations

import argparse
import json
import os


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint or run directory on the test split"
    )
    parser.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a run directory")
    parser.add_argument("--data-dir", help="dataset folder (default: the run's, then $SCNS_DATA_DIR)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scns.config import ConfigError
    from scns.data import get_spec, load_dataset
    from scns.data.augment import BatchTransform
    from scns.train.checkpoint import load_trained_model
    from scns.train.engine import evaluate, resolve_device

    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be > 0, got {args.batch_size}")
    device = resolve_device(args.device)
    model, state = load_trained_model(args.checkpoint, device)
    data_cfg = state["config"]["data"]
    data_dir = args.data_dir or data_cfg.get("data_dir") or os.environ.get("SCNS_DATA_DIR")
    if get_spec(data_cfg["dataset"]).needs_data_dir and not data_dir:
        raise ConfigError(
            f"the checkpoint's dataset '{data_cfg['dataset']}' is read from files: pass --data-dir DIR "
            "(or set SCNS_DATA_DIR)"
        )
    dataset = load_dataset(data_cfg["dataset"], data_dir, args.split)
    transform = BatchTransform.from_spec(get_spec(data_cfg["dataset"]), train=False)
    result = evaluate(model, dataset.images, dataset.labels, transform, args.batch_size, device)
    report = {
        "checkpoint": state["path"],
        "model": state["config"]["model"]["name"],
        "dataset": data_cfg["dataset"],
        "split": args.split,
        "epoch": state["epoch"],
        "n": result.n,
        "top1": round(result.top1, 3),
        "top5": round(result.top5, 3),
        "loss": round(result.loss, 5),
    }
    print(json.dumps(report, indent=2))
    return 0
