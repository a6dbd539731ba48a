"""Read finished runs from their directories (the only input a report has)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scns.config import Config

CELL_NAME = "cell.json"
SUMMARY_NAME = "summary.json"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.yaml"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_finished(run_dir: Path) -> bool:
    """Finished: a summary exists and the metrics cover every epoch of the run's config."""
    if not (run_dir / SUMMARY_NAME).is_file() or not (run_dir / CONFIG_NAME).is_file():
        return False
    return len(read_metrics(run_dir)) == Config.load(run_dir / CONFIG_NAME).train.epochs


def contended(metrics: list[dict[str, Any]], device: str | None) -> bool | None:
    """Whether other work shared the CPU during a CPU run: some epoch ended with a 1-minute load
    average above the run's own threads + 0.5 (None when not logged or not a CPU run)."""
    loads = [
        (m["load_avg_1m"], m.get("torch_threads", 1)) for m in metrics if m.get("load_avg_1m") is not None
    ]
    if device != "cpu" or not loads:
        return None
    return any(load > threads + 0.5 for load, threads in loads)


def run_record(run_dir: Path, cell: dict[str, Any] | None = None) -> dict[str, Any]:
    """One finished run summarised: grid metadata, config facts, accuracy, curves, negatives' statistics.

    Args:
        cell: grid metadata (name, settings, method, negatives); read from ``cell.json`` when None.
    """
    if cell is None:
        path = run_dir / CELL_NAME
        cell = json.loads(path.read_text()) if path.exists() else {}
    summary = json.loads((run_dir / SUMMARY_NAME).read_text())
    metrics = read_metrics(run_dir)
    config = Config.load(run_dir / CONFIG_NAME)
    last = metrics[-1]
    train_time = sum(m["epoch_time_s"] for m in metrics)
    sampling = sum(m.get("sampling_time_s", 0.0) for m in metrics)
    return {
        "name": cell.get("name", run_dir.name),
        "settings": list(cell.get("settings", [])),
        "method": cell.get("method", run_dir.name),
        "seed": config.train.seed,
        "negatives": cell.get("negatives"),
        "dataset": config.data.dataset,
        "model": config.model.name,
        "objective": config.train.objective,
        "epochs": config.train.epochs,
        "final_top1": summary["final_top1"],
        "best_top1": summary["best_top1"],
        "final_top5": summary["final_top5"],
        "train_time_s": train_time,
        "step_time_s": sum(m["step_time_s"] for m in metrics) / len(metrics),
        "sampling_share": sampling / train_time if train_time else 0.0,
        "contended": contended(metrics, summary.get("device")),
        "neg_sim": last.get("train_neg_sim"),
        "topk_share": last.get("train_topk_share"),
        "neg_sim_hist": last.get("neg_sim_hist"),
        "curve": [m.get("test_top1") for m in metrics],
        "device": summary.get("device"),
        "run_dir": str(run_dir),
    }


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories under each path: a run directory itself, or a grid directory's ``runs/*``."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such run or grid directory: {path}")
        if (path / CONFIG_NAME).is_file():
            found.append(path)
        else:
            found.extend(sorted(p.parent for p in path.glob("**/" + CONFIG_NAME)))
    return found


def collect(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Records of every finished run found under ``paths`` (unfinished runs are left out)."""
    return [run_record(p) for p in find_runs(paths) if is_finished(p)]
