"""Does each calibration do what it claims? Before/after pairs on CIFAR-100 (issue: calibrated negatives).

Each pair trains the same short supervised run (resnet8, CIFAR-100 minus a 5,000-image validation
split, which is what it evaluates on: the test split is never read) with one mechanism off (the
legacy behaviour) and on, and reads the diagnostics the engine logs on every ``log_every``-th step:

- bank prefill: the contrastive loss and the positive-negative gap in epoch 0;
- sample_topk: the duplicate rate among an anchor's K negatives (with replacement from a 1,024-row
  table, against draws without replacement from a row as long as K, minus the nearest 2 %);
- latent mixup: the pseudo-negatives' share of the softmax mass and how many score above the positive
  (U(0, 0.5) mixes, against Beta(2, 2) mixes capped at 0.4 with the positive cap);
- class_topk (WordNet): the softmax mass on top-k-class negatives with ties cut by class id against
  shared ties, plus how many top-10 places the id order decides (a property of the matrix);
- proposal correction: class_topk (GloVe) at beta 0 against beta 1.

Runs go through ``scns grid``'s runner (resumable: re-run to continue). Results: JSON + Markdown.

    python benchmarks/mechanisms.py --data-dir ~/data --out benchmarks/results/mechanisms
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from scns.provenance import code_provenance
from scns.rundir import RunDir
from scns.train.grid import run_grid
from scns.train.protocols import Cell

BASE: dict[str, Any] = {
    "data.dataset": "cifar100",
    "data.batch_size": 128,
    "data.val_size": 5000,
    "data.eval_split": "val",
    "model.name": "resnet8",
    "optim.lr": 0.1,
    "optim.schedule": "onecycle",
    "train.epochs": 2,
    "train.max_steps_per_epoch": 60,
    "train.log_every": 5,
    "train.device": "cpu",
    "contrast.negatives": 4096,
    "contrast.top_k": 10,
    "contrast.similarity": "wordnet",
}

#: (mechanism, metric keys compared, {arm label: overrides}); the first arm is the legacy behaviour.
PAIRS: list[tuple[str, tuple[str, ...], dict[str, dict[str, Any]]]] = [
    (
        "bank prefill",
        ("contrast_epoch0", "gap_epoch0", "pos_sim_epoch0"),
        {
            "random banks": {"contrast.sampler": "uniform", "contrast.bank_prefill": False},
            "prefilled": {"contrast.sampler": "uniform"},
        },
    ),
    (
        "sample_topk draws",
        ("dup_rate", "gap", "neg_sim"),
        {
            "1,024-row table, with replacement": {
                "contrast.sampler": "sample_topk",
                "contrast.top_k": 1024,
                "contrast.refresh_every": 1,
                "contrast.share_top_k": 10,
                "contrast.sampler_options.sample_topk.with_replacement": True,
            },
            "4,096-row table, without replacement, skip nearest 2%": {
                "contrast.sampler": "sample_topk",
                "contrast.top_k": 4096,
                "contrast.refresh_every": 1,
                "contrast.share_top_k": 10,
                "contrast.sampler_options.sample_topk.skip_nearest": 0.02,
            },
        },
    ),
    (
        "latent mixup",
        ("pseudo_mass", "pseudo_above_pos", "neg_sim", "gap"),
        {
            "U(0, 0.5) mixes of the hardest": {"contrast.sampler": "uniform", "contrast.latent_mixup": 256},
            "Beta(2, 2) below 0.4, capped at the positive": {
                "contrast.sampler": "uniform",
                "contrast.latent_mixup": 256,
                "contrast.mixup_lam": "beta",
                "contrast.mixup_alpha": 2.0,
                "contrast.mixup_lam_max": 0.4,
                "contrast.mixup_cap": True,
            },
        },
    ),
    (
        "class_topk ties (WordNet)",
        ("topk_share", "topk_mass", "gap"),
        {
            "ties cut by class id": {"contrast.sampler": "class_topk", "contrast.ties": "id"},
            "tie groups shared": {"contrast.sampler": "class_topk"},
        },
    ),
    (
        "proposal correction (class_topk, GloVe)",
        ("contrast", "gap", "topk_mass"),
        {
            "beta 0": {"contrast.sampler": "class_topk", "contrast.similarity": "glove"},
            "beta 1": {
                "contrast.sampler": "class_topk",
                "contrast.similarity": "glove",
                "contrast.proposal_beta": 1.0,
            },
        },
    ),
]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60].rstrip("-")


def cells(seed: int) -> list[Cell]:
    out = []
    for mechanism, _, arms in PAIRS:
        for arm, overrides in arms.items():
            out.append(
                Cell(
                    name=f"{_slug(mechanism)}--{_slug(arm)}-s{seed}",
                    settings=("mechanism",),
                    method=f"{mechanism}: {arm}",
                    seed=seed,
                    overrides={**BASE, **overrides, "train.seed": seed},
                )
            )
    return out


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in RunDir(run_dir).metrics.read_text().splitlines() if line.strip()]


def arm_values(metrics: list[dict[str, Any]], weight: float = 0.5) -> dict[str, Any]:
    """The compared figures of one run: last-epoch diagnostics (with standard errors) and epoch 0's."""
    first, last = metrics[0], metrics[-1]
    out: dict[str, Any] = {}
    for key in (
        "dup_rate",
        "gap",
        "neg_sim",
        "pos_sim",
        "topk_share",
        "topk_mass",
        "pseudo_mass",
        "pseudo_above_pos",
    ):
        if f"train_{key}" in last:
            out[key] = (last[f"train_{key}"], last.get(f"train_{key}_se"))
            out[f"{key}_epoch0"] = (first[f"train_{key}"], first.get(f"train_{key}_se"))
    # the logged contrastive part is weight x loss; report the loss itself
    out["contrast"] = (last["train_contrast"] / weight, None)
    out["contrast_epoch0"] = (first["train_contrast"] / weight, None)
    out["val_top1"] = (last.get("val_top1"), None)
    return out


def tie_stats(data_dir: str) -> dict[str, Any] | None:
    """How many CIFAR-100 top-10 WordNet places the class-id order decides."""
    try:
        from scns.data import load_dataset
        from scns.similarity import class_similarity, topk_tie_stats

        classes = load_dataset("cifar100", data_dir, "test").classes
        return topk_tie_stats(class_similarity("wordnet", list(classes)), 10)
    except Exception as err:  # noqa: BLE001 - reported, not fatal
        return {"error": f"{type(err).__name__}: {err}"}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}; seeds {results['seeds']}; {results['steps']} steps per run "
        f"(2 epochs x 60 steps of 128), diagnostics on every 5th step (mean +- standard error over those "
        "steps of the last epoch, or of epoch 0 where named).",
        "",
        "| mechanism | arm | " + " | ".join(["figure", "value"]) + " |",
        "|---|---|---|---|",
    ]
    for mechanism, keys, arms in PAIRS:
        for arm in arms:
            values = results["runs"].get(f"{mechanism}: {arm}", {})
            for key in keys:
                if key not in values:
                    continue
                mean, se = values[key]
                shown = (
                    "-"
                    if mean is None
                    else (f"{mean:.4f}" + ("" if se is None or se != se else f" +- {se:.4f}"))
                )
                lines.append(f"| {mechanism} | {arm} | {key} | {shown} |")
    ties = results.get("wordnet_ties")
    if ties and "error" not in ties:
        lines += [
            "",
            f"WordNet top-10 on CIFAR-100: {ties['rows_cut']} of {ties['rows']} rows cut inside a tie and "
            f"{ties['slots_by_order']} of {ties['slots']} places filled by class order with ties cut by id; "
            "0 with shared ties (every tied class kept at its share).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", default="benchmarks/results/mechanisms")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    # threads: torch default, or OMP_NUM_THREADS
    out = Path(args.out)
    all_cells = [c for s in args.seeds for c in cells(s)]
    started = time.time()
    status = run_grid(all_cells, out, overrides={"data.data_dir": args.data_dir})
    runs: dict[str, Any] = {}
    for cell in all_cells:
        run_dir = out / "runs" / cell.name
        if RunDir(run_dir).summary.exists():
            runs[cell.method] = arm_values(read_metrics(run_dir))
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "code": code_provenance(),
        "seeds": args.seeds,
        "steps": 120,
        "wall_s_this_invocation": time.time() - started,
        "failed": status["failed"],
        "wordnet_ties": tie_stats(args.data_dir),
        "runs": runs,
    }
    (out / "mechanisms.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (out / "mechanisms.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
