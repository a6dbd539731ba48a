"""PNG plots for the report (matplotlib, headless)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scns.report.collect import method_step_time  # noqa: E402


def by_method(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["method"]].append(r)
    return dict(groups)


def _save(
    fig: Any, ax: Any, path: Path, title: str, xlabel: str, ylabel: str, legend: tuple | None = None
) -> Path:
    """Label, title, grid and legend the axes, write the PNG and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend is None:
        ax.legend(fontsize=7)
    else:
        ax.legend(*legend, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_epoch_curves(ax: Any, records: list[dict[str, Any]], key: str) -> bool:
    """One line per method of the per-epoch values ``records[i][key]`` (mean over seeds, band =
    min..max); runs with a missing epoch are left out. Returns whether anything was drawn."""
    drawn = False
    for method, runs in by_method(records).items():
        curves = [r[key] for r in runs if r.get(key) and None not in r[key]]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        arr = np.array([c[:length] for c in curves], dtype=float)
        epochs = np.arange(1, length + 1)
        ax.plot(epochs, arr.mean(0), marker="o", markersize=3, label=f"{method} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(epochs, arr.min(0), arr.max(0), alpha=0.15)
        drawn = True
    return drawn


def learning_curves(records: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Test top-1 per epoch, one line per method (mean over seeds, band = min..max)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _plot_epoch_curves(ax, records, "curve")
    return _save(fig, ax, path, title, "epoch", "top-1 (%)")


def _summed_histogram(runs: list[dict[str, Any]], key: str) -> np.ndarray | None:
    """Histogram counts [bins] of ``key`` summed over runs, normalised to shares (None if empty)."""
    hists = [np.asarray(r[key], dtype=float) for r in runs if r.get(key)]
    if not hists:
        return None
    total = np.sum(hists, axis=0)
    return total / total.sum() if total.sum() > 0 else None


def hardness_histograms(records: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Distribution of anchor-negative cosine of the negatives each sampler drew, in the first and
    the last epoch (two panels, counts summed over seeds)."""
    panels = (("neg_sim_hist_first", "first epoch"), ("neg_sim_hist", "last epoch"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    drawn = False
    for ax, (key, label) in zip(axes, panels):
        for method, runs in by_method(records).items():
            shares = _summed_histogram(runs, key)
            if shares is None:
                continue
            edges = np.linspace(-1.0, 1.0, len(shares) + 1)
            ax.plot((edges[:-1] + edges[1:]) / 2, shares, drawstyle="steps-mid", label=method)
            drawn = True
        ax.set_title(label)
        ax.set_xlabel("cosine(anchor, negative) in the memory bank")
        ax.grid(alpha=0.3)
    if not drawn:
        plt.close(fig)
        return None
    axes[0].set_ylabel("share of drawn negatives")
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def hardness_curves(records: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Mean anchor-negative cosine of the drawn negatives per epoch, one line per method (mean over
    seeds, band = min..max)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if not _plot_epoch_curves(ax, records, "neg_sim_curve"):
        plt.close(fig)
        return None
    return _save(fig, ax, path, title, "epoch", "mean cosine(anchor, drawn negative)")


DIAGNOSTIC_PANELS = (
    ("gap_curve", "positive - negative cosine"),
    ("topk_mass_curve", "softmax mass on top-k-class negatives"),
    ("pseudo_mass_curve", "softmax mass on pseudo-negatives"),
    ("dup_rate_curve", "duplicate rate among drawn negatives"),
)


def diagnostic_curves(records: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """The negatives' per-epoch diagnostics (score gap, mass shares, duplicate rate), one panel each,
    one line per method (mean over seeds, band = min..max); panels no run logged are left out."""
    panels = [
        (k, label) for k, label in DIAGNOSTIC_PANELS if any(r.get(k) and None not in r[k] for r in records)
    ]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        _plot_epoch_curves(ax, records, key)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def budget_plot(records: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Test top-1 against the number of negatives K per sampler, step time on a second axis."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax2 = ax.twinx()
    drawn = False
    for method, runs in by_method(records).items():
        by_k: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in runs:
            if r.get("negatives"):
                by_k[int(r["negatives"])].append(r)
        if not by_k:
            continue
        ks = sorted(by_k)
        acc = [np.mean([r["final_top1"] for r in by_k[k]]) for k in ks]
        err = [np.std([r["final_top1"] for r in by_k[k]], ddof=1) if len(by_k[k]) > 1 else 0.0 for k in ks]
        step_ms = [1000 * (method_step_time(by_k[k])[0] or np.nan) for k in ks]
        line = ax.errorbar(ks, acc, yerr=err, marker="o", capsize=3, label=f"{method} accuracy")
        ax2.plot(
            ks,
            step_ms,
            linestyle="--",
            marker="x",
            color=line[0].get_color(),
            alpha=0.7,
            label=f"{method} step time",
        )
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log", base=2)
    ax2.set_ylabel("training step time (ms, dashed)")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    return _save(
        fig,
        ax,
        path,
        title,
        "negatives per anchor K",
        "test top-1 (%)  (mean +- std over seeds)",
        (handles, labels),
    )
