"""``scns demo``: the method's showcase on the bundled digits data, offline, in a couple of minutes.

Trains the same small model with cross-entropy alone, uniform negatives, class-level SCNS
(similarity from the prototypes of the cross-entropy model), sample-level SCNS and latent mixup,
for the same seeds, and prints test accuracy (mean +- std over seeds) and the mean anchor-negative
cosine similarity of the negatives each sampler drew.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cross-entropy", {}),
    ("uniform", {"contrast.sampler": "uniform"}),
    ("class_topk (prototypes)", {"contrast.sampler": "class_topk", "contrast.top_k": 3}),
    ("sample_topk", {"contrast.sampler": "sample_topk", "contrast.top_k": 64, "contrast.refresh_every": 2}),
    ("uniform + latent mixup", {"contrast.sampler": "uniform", "contrast.latent_mixup": 64}),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="offline showcase on the bundled digits data (no download)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--negatives", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out-dir", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the results table as JSON to this file")
    parser.set_defaults(run=run)


def demo_overrides(model: str, epochs: int, seed: int, device: str, negatives: int) -> dict[str, Any]:
    """The demo's training setting on digits, as dotted config overrides (shared with benchmarks)."""
    return {
        "data.dataset": "digits",
        "data.batch_size": 64,
        "model.name": model,
        "optim.lr": 0.05,
        "optim.schedule": "onecycle",
        "train.epochs": epochs,
        "train.seed": seed,
        "train.device": device,
        "train.progress": False,
        "contrast.negatives": negatives,
        "contrast.weight": 0.5,
    }


def demo_config(model: str, epochs: int, seed: int, device: str, negatives: int):  # -> Config
    from scns.config import Config

    return Config().with_overrides(demo_overrides(model, epochs, seed, device, negatives))


def run(args: argparse.Namespace) -> int:
    from scns.rundir import RunDir
    from scns.train.engine import Trainer
    from scns.train.validate import validate_config

    started = time.perf_counter()
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="scns-demo-") as tmp:
        root = Path(args.out_dir or tmp)
        for seed in args.seeds:
            base = demo_config(args.model, args.epochs, seed, args.device, args.negatives)
            prototype_run = root / f"cross-entropy-s{seed}"
            for name, overrides in VARIANTS:
                config = base.with_overrides(overrides)
                if overrides.get("contrast.sampler") == "class_topk":
                    config = config.with_overrides({"contrast.similarity": f"prototypes:{prototype_run}"})
                validate_config(config)
                run_dir = root / f"{name.split(' ')[0]}{'-mixup' if 'mixup' in name else ''}-s{seed}"
                summary = Trainer.create(config, run_dir).fit()
                last = json.loads(RunDir(run_dir).metrics.read_text().splitlines()[-1])
                results[name].append(
                    {"top1": summary["final_top1"], "neg_sim": last.get("train_neg_sim", float("nan"))}
                )
                print(f"  {name:<26} seed {seed}: test top-1 {summary['final_top1']:.2f}%", flush=True)
    wall = time.perf_counter() - started
    table = summarise(results)
    print(format_table(table, args, wall))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": table, "seeds": args.seeds, "epochs": args.epochs, "wall_s": wall}, indent=2)
        )
    return 0


def summarise(results: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    rows = []
    for name, runs in results.items():
        accs = [r["top1"] for r in runs]
        sims = [r["neg_sim"] for r in runs]
        rows.append(
            {
                "method": name,
                "n": len(accs),
                "top1_mean": statistics.fmean(accs),
                "top1_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "neg_sim_mean": statistics.fmean(sims) if name != "cross-entropy" else None,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> str:
    lines = [
        "",
        f"scns demo: {args.model} on digits, {args.epochs} epochs, K={args.negatives}, seeds {args.seeds} ({wall:.0f} s)",
        f"{'method':<26} {'test top-1 (%)':>16} {'anchor-neg cos':>15}",
    ]
    for row in rows:
        sim = "-" if row["neg_sim_mean"] is None else f"{row['neg_sim_mean']:.3f}"
        lines.append(f"{row['method']:<26} {row['top1_mean']:>8.2f} +- {row['top1_std']:<5.2f} {sim:>15}")
    lines.append(
        "mean +- std over seeds (sample std). Differences smaller than about two std are within noise; "
        "digits is a tiny set, so this shows the mechanics, not the paper's gains."
    )
    return "\n".join(lines)
