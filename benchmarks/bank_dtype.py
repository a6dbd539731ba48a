"""Accuracy effect of storing the memory bank in bfloat16 / float16 instead of float32.

Runs the ``scns demo`` setting (digits, resnet8, uniform negatives) for every seed with the bank in
float32, bfloat16 and float16, through ``scns grid``'s runner (resumable, one run directory each),
then writes ``scns report``'s tables: per dtype mean +- std over seeds and the difference to float32
paired by seed with a 95% t interval. The CIFAR-10 counterpart is the ``bank_dtype`` setting of the
``cpu-quick`` grid.

    python benchmarks/bank_dtype.py --out /tmp/bank-dtype --seeds 0 1 2 3 4 5 6 7
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scns.commands.demo import demo_overrides
from scns.report.collect import collect
from scns.report.markdown import build_report
from scns.train.grid import run_grid
from scns.train.protocols import Cell, bank_dtype_cells, merge_cells


def cells(seeds: list[int], epochs: int, negatives: int, dtypes: list[str]) -> list[Cell]:
    base = [
        Cell(
            name=f"digits-uniform-k{negatives}-s{seed}",
            settings=("bank_dtype",),
            method="uniform",
            seed=seed,
            overrides={
                **demo_overrides("resnet8", epochs, seed, "cpu", negatives),
                "contrast.sampler": "uniform",
            },
            negatives=negatives,
        )
        for seed in seeds
    ]
    return merge_cells(*(bank_dtype_cells(base, "uniform", dtype) for dtype in dtypes))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="grid directory (runs/, results.json, report/)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--negatives", type=int, default=512)
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16"])
    args = parser.parse_args()
    status = run_grid(cells(args.seeds, args.epochs, args.negatives, args.dtypes), args.out)
    if status["failed"]:
        raise SystemExit(f"failed runs: {status['failed']}")
    report = build_report(collect([args.out]), args.out / "report", [str(args.out)])
    print(report.read_text())


if __name__ == "__main__":
    main()
