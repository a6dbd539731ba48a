"""Sample-level kNN tables at ImageNet size: build time, peak memory and quality of the faiss backend.

Synthetic features stand in for a trained embedding: C class centres on the unit sphere, each
sample its centre plus isotropic Gaussian noise (``--noise`` times a unit vector's scale), then
normalised; labels are ``i % C`` (ImageNet-1k's 1.28M images over 1000 classes by default).

For each index configuration it measures, in one process:
  * the wall time of ``SampleTopKSampler.refresh`` (the whole table build);
  * the peak resident memory during the build (Linux VmHWM, reset before the build), next to
    the size of the features themselves and the docstring's bound ``4 N (2 D + top_k)`` bytes;
  * quality on ``--queries`` random anchors against an exact other-class top-k computed here by
    chunked matrix products: recall (share of the exact neighbours found) and the mean cosine of
    the table's neighbours vs the exact ones vs uniform other-class samples (how hard the drawn
    negatives are);
  * the exact search's cost, extrapolated from timing it for those anchors (labelled as such).

With ``--bank RUN_DIR`` the features are instead the memory bank of a finished training run (the
last checkpoint's contrastive bank, normalised) and the labels its training set's (read from
``--data-dir`` or $SCNS_DATA_DIR): the same measurements on embeddings a model actually learned.

    python benchmarks/knn_scale.py                                   # N = 1,281,167, IVF
    python benchmarks/knn_scale.py --n 50000 --classes 100 --nprobe 8 32 --index ivf flat
    python benchmarks/knn_scale.py --bank RUN_DIR --top-k 1024 --nprobe 32 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scns.config import Config
from scns.data.datasets import load_dataset
from scns.provenance import code_provenance
from scns.rundir import RunDir
from scns.sampling import SampleTopKSampler
from scns.sampling.sample_topk import default_nlist
from scns.train.checkpoint import load_checkpoint, resolve_checkpoint_path


def synthetic_features(
    n: int, classes: int, dim: int, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, dim] unit-norm float32 features and int64 [n] labels ``i % classes`` (built in chunks)."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    labels = torch.arange(n) % classes
    feats = torch.empty(n, dim)
    for start in range(0, n, 1 << 18):
        stop = min(start + (1 << 18), n)
        noisy = centres[labels[start:stop]] + noise / dim**0.5 * torch.randn(stop - start, dim, generator=g)
        feats[start:stop] = F.normalize(noisy, dim=1)
    return feats, labels


def run_bank(run_dir: Path, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """[N, D] unit-norm memory bank of ``run_dir``'s last checkpoint, int64 [N] training labels, and the
    bank's state key (the first in sorted order where a distillation objective holds two)."""
    config = Config.load(RunDir(run_dir).config)
    state = load_checkpoint(resolve_checkpoint_path(run_dir))["objective"]
    banks = sorted(key for key in state if key.endswith("bank.memory"))
    if not banks:
        raise SystemExit(f"{run_dir} has no memory bank: --bank needs a run with a contrastive term")
    labels = load_dataset(config.data.dataset, data_dir or config.data.data_dir, "train").labels
    feats = F.normalize(state[banks[0]].float(), dim=1)
    if len(feats) != len(labels):
        raise SystemExit(f"{run_dir}: bank has {len(feats)} rows but the training set {len(labels)}")
    return feats, labels, banks[0]


def rss_bytes(field: str) -> int:
    """A VmRSS / VmHWM line of /proc/self/status in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def exact_other_class_topk(
    feats: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, top_k: int, chunk: int = 64
) -> tuple[torch.Tensor, float]:
    """Exact top-k other-class neighbours of ``queries`` [R] (ids [R, top_k]) and the seconds it took."""
    out = torch.empty(len(queries), top_k, dtype=torch.long)
    started = time.perf_counter()
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        sims = feats[q] @ feats.T  # [chunk, N]
        sims[labels[q][:, None] == labels[None, :]] = float("-inf")
        out[start : start + chunk] = sims.topk(top_k, dim=1).indices
    return out, time.perf_counter() - started


def mean_cosine(feats: torch.Tensor, queries: torch.Tensor, neighbours: torch.Tensor) -> float:
    """Mean cosine between each query [R] and its neighbours [R, k]."""
    return float((feats[queries][:, None, :] * feats[neighbours]).sum(-1).mean())


def measure(
    feats: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    index: str,
    nprobe: int,
    reference: dict,
) -> dict[str, Any]:
    """Build one table and score it against the exact neighbours of the reference anchors."""
    sampler = SampleTopKSampler(
        labels, top_k=args.top_k, backend="faiss", index=index, nlist=args.nlist, nprobe=max(nprobe, 1)
    )
    peak_reset = reset_peak_rss()
    rss_before = rss_bytes("VmRSS")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sampler.refresh(feats)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = rss_bytes("VmHWM") if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queries, exact = reference["queries"], reference["exact"]
    found = sampler.table[queries].long()
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, exact)) / exact.numel()
    record = {
        "index": index,
        "nlist": (args.nlist or default_nlist(len(labels))) if index == "ivf" else None,
        "nprobe": nprobe if index == "ivf" else None,
        "build_wall_s": round(wall, 2),
        "build_cpu_s": round(cpu, 2),
        "peak_rss_during_build_gib": round(peak / 2**30, 3),
        "peak_over_pre_build_rss_gib": round((peak - rss_before) / 2**30, 3),
        "peak_is_build_only": peak_reset,
        "table_gib": round(sampler.table.numel() * 4 / 2**30, 3),
        "recall_at_top_k": round(recall, 4),
        "mean_cos_table": round(mean_cosine(feats, queries, found), 4),
        "other_class_in_table": bool((labels[found] != labels[queries][:, None]).all()),
    }
    del sampler
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_281_167, help="samples (default: ImageNet-1k train)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=256, help="neighbours kept per sample")
    parser.add_argument("--noise", type=float, default=1.0, help="noise scale around the class centre")
    parser.add_argument("--index", nargs="+", default=["ivf"], choices=["ivf", "flat"])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[32])
    parser.add_argument("--nlist", type=int, default=None, help="IVF cells (default about 4 sqrt(N))")
    parser.add_argument("--queries", type=int, default=512, help="anchors scored against exact neighbours")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and faiss threads (default: all cores)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bank", type=Path, default=None, help="a run directory: use its memory bank")
    parser.add_argument(
        "--data-dir", default=None, help="dataset folder for --bank (default: $SCNS_DATA_DIR)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        import faiss

        faiss.omp_set_num_threads(args.threads)

    t0 = time.perf_counter()
    features = "synthetic"
    if args.bank is not None:
        feats, labels, bank_key = run_bank(args.bank, args.data_dir or os.environ.get("SCNS_DATA_DIR"))
        args.n, args.dim, args.classes, args.noise = len(feats), feats.shape[1], int(labels.max()) + 1, None
        features = f"memory bank {bank_key} of {args.bank}"
    else:
        feats, labels = synthetic_features(args.n, args.classes, args.dim, args.noise, args.seed)
    generate_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(args.seed + 1)
    queries = torch.randperm(args.n, generator=g)[: args.queries]
    exact, exact_s = exact_other_class_topk(feats, labels, queries, args.top_k)
    uniform = torch.randint(0, args.n, (args.queries, 4 * args.top_k), generator=g)
    uniform_cos = (feats[queries][:, None, :] * feats[uniform]).sum(-1)
    other = labels[uniform] != labels[queries][:, None]
    reference = {"queries": queries, "exact": exact}

    runs = []
    for index in args.index:
        for nprobe in args.nprobe if index == "ivf" else [0]:
            runs.append(measure(feats, labels, args, index, nprobe, reference))
            print(json.dumps(runs[-1]), flush=True)

    code = code_provenance()
    result = {
        "command": "python benchmarks/knn_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "commit": (code["git_commit"] or "unknown")[:7],
        "source_sha256": code["source_sha256"],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "features": features,
        "n": args.n,
        "dim": args.dim,
        "classes": args.classes,
        "top_k": args.top_k,
        "noise": args.noise,
        "seed": args.seed,
        "features_gib": round(feats.numel() * 4 / 2**30, 3),
        "memory_bound_gib": round(4 * args.n * (2 * args.dim + args.top_k) / 2**30, 3),
        "generate_s": round(generate_s, 1),
        "exact_reference": {
            "queries": args.queries,
            "seconds": round(exact_s, 2),
            "extrapolated_full_build_s": round(exact_s * args.n / args.queries),
            "mean_cos": round(mean_cosine(feats, queries, exact), 4),
        },
        "uniform_other_class_mean_cos": round(float(uniform_cos[other].mean()), 4),
        "runs": runs,
    }
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


def print_table(result: dict[str, Any]) -> None:
    ref = result["exact_reference"]
    print(
        f"\nN={result['n']:,} D={result['dim']} C={result['classes']} top_k={result['top_k']} | features "
        f"{result['features_gib']} GiB, bound 4N(2D+top_k) = {result['memory_bound_gib']} GiB | {result['machine']}"
    )
    print(
        f"exact search: {ref['seconds']} s for {ref['queries']} anchors -> about {ref['extrapolated_full_build_s']:,} s "
        f"for all N (extrapolated); mean cosine exact {ref['mean_cos']}, uniform other-class "
        f"{result['uniform_other_class_mean_cos']}\n"
    )
    print(
        "| index | nlist | nprobe | build wall s | build CPU s | peak RSS GiB | peak over pre-build GiB | recall@top_k | mean cos |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["runs"]:
        print(
            f"| {r['index']} | {r['nlist'] or '-'} | {r['nprobe'] or '-'} | {r['build_wall_s']} | {r['build_cpu_s']} | "
            f"{r['peak_rss_during_build_gib']} | {r['peak_over_pre_build_rss_gib']} | {r['recall_at_top_k']} | {r['mean_cos_table']} |"
        )


if __name__ == "__main__":
    main()
