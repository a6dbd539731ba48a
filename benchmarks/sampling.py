"""Speed of negative sampling and of the CRD contrastive term (issue 3's protocol).

Setting: N = 50,000 training samples, C = 100 equal classes (CIFAR-100's layout), B = 64,
D = 128, K = 16,384 unless stated. Prints a Markdown table and the JSON of every measurement
(``--json PATH`` also writes the JSON). Times are medians over ``--repeats`` runs after a warm-up.

    python benchmarks/sampling.py              # full protocol (a few minutes on 2 cores)
    python benchmarks/sampling.py --quick      # fewer repeats, smaller kNN build
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scns.losses import NCELoss
from scns.memory import MemoryBank
from scns.sampling import ClassTopKSampler, MixtureSampler, SampleTopKSampler, UniformSampler

N, C, B, D, K = 50_000, 100, 64, 128, 16_384


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` in seconds, after one warm-up call."""
    return timed_both(fn, repeats)[0]


def timed_both(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``fn``, in seconds.

    On a shared machine wall time includes waiting for a core; CPU time does not.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


class NumpyPerSampleReference:
    """The dataset-side sampler of the CRD reference: per anchor, ``np.random.choice`` from its
    other-class index list (without replacement when it has enough candidates)."""

    def __init__(self, labels: np.ndarray, num_classes: int, seed: int = 0) -> None:
        self.negatives = [np.nonzero(labels != c)[0] for c in range(num_classes)]
        self.rng = np.random.default_rng(seed)
        np.random.seed(seed)

    def sample(self, anchor_labels: np.ndarray, k: int) -> np.ndarray:
        rows = []
        for y in anchor_labels:  # per-sample Python, as in a DataLoader worker's __getitem__
            pool = self.negatives[y]
            rows.append(np.random.choice(pool, k, replace=k > len(pool)))
        return np.stack(rows)


def bench_samplers(
    labels: torch.Tensor, topk_sampler: SampleTopKSampler, repeats: int
) -> list[dict[str, Any]]:
    """Negatives per second of each sampler at K, against the NumPy per-sample reference."""
    g = torch.Generator().manual_seed(0)
    sim = torch.rand(C, C, generator=g)
    sim = (sim + sim.T) / 2
    index = torch.randperm(N, generator=g)[:B]
    y = labels[index]
    samplers: dict[str, Any] = {
        "uniform": UniformSampler(labels),
        "class_topk (top 10, uniform)": ClassTopKSampler(labels, sim, top_k=10),
        "class_topk (top 10, softmax)": ClassTopKSampler(
            labels, sim, top_k=10, weighting="softmax", temperature=0.1
        ),
        f"sample_topk (top {topk_sampler.top_k})": topk_sampler,
        "mixture (1/2 uniform + 1/2 class_topk)": MixtureSampler(
            [(UniformSampler(labels), 0.5), (ClassTopKSampler(labels, sim, top_k=10), 0.5)]
        ),
    }
    reference = NumpyPerSampleReference(labels.numpy(), C)
    y_np = y.numpy()
    fns: dict[str, Callable[[], Any]] = {
        "numpy per-sample reference (np.random.choice)": lambda: reference.sample(y_np, K),
        "floor: torch.randint of B*K ids": lambda: torch.randint(0, N, (B, K), generator=g),
    }
    for name, sampler in samplers.items():
        fns[name] = lambda sampler=sampler: sampler.sample(index, y, K, g)
    rows = []
    for name, fn in fns.items():
        wall, cpu = timed_both(fn, repeats)
        rows.append({"sampler": name, "ms_per_batch": wall * 1e3, "cpu_ms_per_batch": cpu * 1e3})
    ref = rows[0]
    for row in rows:
        row["negatives_per_s"] = B * K / (row["ms_per_batch"] / 1e3)
        row["speedup"] = ref["ms_per_batch"] / row["ms_per_batch"]
        row["cpu_speedup"] = ref["cpu_ms_per_batch"] / row["cpu_ms_per_batch"]
    return rows


class ContrastTerm(nn.Module):
    """CRD's contrastive term: embed heads, one bank per side, NCE on each side, bank updates."""

    def __init__(
        self, feat_dim: int, k: int, method: str | None, bank_dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        self.embed_s, self.embed_t = nn.Linear(feat_dim, D), nn.Linear(feat_dim, D)
        self.bank_s, self.bank_t = MemoryBank(N, D, dtype=bank_dtype), MemoryBank(N, D, dtype=bank_dtype)
        self.nce_s, self.nce_t = NCELoss(N), NCELoss(N)
        self.k, self.method = k, method

    def forward(
        self, f_s: torch.Tensor, f_t: torch.Tensor, neg_idx: torch.Tensor, index: torch.Tensor
    ) -> torch.Tensor:
        z_s = F.normalize(self.embed_s(f_s), dim=1)
        z_t = F.normalize(self.embed_t(f_t), dim=1)
        idx = torch.cat([index.unsqueeze(1), neg_idx], dim=1)  # column 0: the positive (own row)
        s_s = self.bank_t.scores(z_s, idx, self.method)  # student vs teacher bank
        s_t = self.bank_s.scores(z_t, idx, self.method)  # teacher vs student bank
        loss = self.nce_s(s_s[:, 0], s_s[:, 1:]) + self.nce_t(s_t[:, 0], s_t[:, 1:])
        self._pending = (index, z_s.detach(), z_t.detach())
        return loss

    def update_banks(self) -> None:
        index, z_s, z_t = self._pending
        self.bank_s.update(index, z_s)
        self.bank_t.update(index, z_t)


def bench_term(labels: torch.Tensor, ks: list[int], feat_dim: int, repeats: int) -> list[dict[str, Any]]:
    """Forward + backward of the whole contrastive term (sampling, scoring, NCE, bank updates)."""
    g = torch.Generator().manual_seed(1)
    sampler = UniformSampler(labels)
    index = torch.randperm(N, generator=g)[:B]
    y = labels[index]
    f_s = torch.randn(B, feat_dim, requires_grad=True)
    f_t = torch.randn(B, feat_dim)
    rows = []
    variants = [(k, m, torch.float32) for k in ks for m in ("gather", "matmul")]
    variants += [(k, "matmul", torch.bfloat16) for k in ks]
    for k, method, dtype in variants:
        term = ContrastTerm(feat_dim, k, method, dtype)

        def step(term=term, k=k) -> None:
            neg_idx = sampler.sample(index, y, k, g)
            loss = term(f_s, f_t, neg_idx, index)
            loss.backward()
            term.update_banks()

        idx = torch.cat([index.unsqueeze(1), sampler.sample(index, y, k, g)], 1)
        z = F.normalize(torch.randn(B, D), dim=1).requires_grad_(True)
        wall, cpu = timed_both(step, repeats)
        rows.append(
            {
                "K": k,
                "method": method,
                "bank_dtype": str(dtype).removeprefix("torch."),
                "auto_choice": term.bank_t.choose_method(B, k + 1),
                "ms_per_step": wall * 1e3,
                "cpu_ms_per_step": cpu * 1e3,
                "ms_sample": timed(lambda k=k: sampler.sample(index, y, k, g), repeats) * 1e3,
                "ms_score_one_side": timed(
                    lambda term=term, idx=idx, z=z, method=method: (
                        term.bank_t.scores(z, idx, method).sum().backward()
                    ),
                    repeats,
                )
                * 1e3,
            }
        )
    return rows


def bench_model_step(repeats: int) -> dict[str, Any] | None:
    """Time of one resnet8x4 SGD step (forward, CE, backward, update) on a [64, 3, 32, 32] batch."""
    try:
        from scns.models import create_model
    except ImportError:
        return None
    model = create_model("resnet8x4", 100)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, 3, 32, 32, generator=g)
    y = torch.randint(0, 100, (B,), generator=g)

    def step() -> None:
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    wall, cpu = timed_both(step, repeats)
    return {
        "model": "resnet8x4",
        "ms_per_step": wall * 1e3,
        "cpu_ms_per_step": cpu * 1e3,
        "feature_dim": model.feature_dim,
    }


def bench_knn_build(
    labels: torch.Tensor, n: int, top_k: int, backends: list[str]
) -> tuple[list[dict[str, Any]], SampleTopKSampler]:
    """SampleTopK table build time (one refresh) for N=n, D=128."""
    g = torch.Generator().manual_seed(3)
    feats = F.normalize(torch.randn(n, D, generator=g), dim=1)
    rows, built = [], None
    for backend in backends:
        sampler = SampleTopKSampler(labels[:n], top_k=top_k, backend=backend)
        start, cpu = time.perf_counter(), time.process_time()
        sampler.refresh(feats)
        rows.append(
            {
                "backend": backend,
                "N": n,
                "D": D,
                "top_k": top_k,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu,
            }
        )
        built = built or sampler
    return rows, built


def markdown(results: dict[str, Any]) -> str:
    env = results["env"]
    lines = [
        f"### Sampling benchmark: {env['torch_threads']} torch thread(s), {env['cpu_count']} CPUs, "
        f"load average {env['loadavg_start']} at start / {env['loadavg_end']} at end",
        "",
        f"Medians of {env['repeats']} runs; wall time, and process CPU time summed over threads.",
        "",
        f"Samplers, N={N}, C={C}, B={B}, K={K}:",
        "",
        "| sampler | wall ms / batch | CPU ms / batch | negatives / s (wall) | vs reference (wall) | vs reference (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["samplers"]:
        lines.append(
            f"| {r['sampler']} | {r['ms_per_batch']:.1f} | {r['cpu_ms_per_batch']:.1f} | "
            f"{r['negatives_per_s'] / 1e6:.1f} M | {r['speedup']:.1f}x | {r['cpu_speedup']:.1f}x |"
        )
    lines += [
        "",
        "Contrastive term, CRD style with both sides (embed heads, sampling, bank scoring, NCE, backward, bank updates):",
        "",
        "| K | scoring | bank | wall ms / step | CPU ms / step | sampling ms | one-side scoring fwd+bwd ms | auto picks |",
        "|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results["term"]:
        lines.append(
            f"| {r['K']} | {r['method']} | {r['bank_dtype']} | {r['ms_per_step']:.1f} | {r['cpu_ms_per_step']:.1f} | "
            f"{r['ms_sample']:.1f} | {r['ms_score_one_side']:.1f} | {r['auto_choice']} |"
        )
    step = results.get("model_step")
    if step:
        for dtype in ("float32", "bfloat16"):
            term = min(r["ms_per_step"] for r in results["term"] if r["K"] == K and r["bank_dtype"] == dtype)
            share = term / (term + step["ms_per_step"])
            lines.append(
                f"\nresnet8x4 SGD step (B={B}): {step['ms_per_step']:.1f} ms; contrastive term at K={K} "
                f"({dtype} bank): {term:.1f} ms = {100 * share:.1f}% of step + term."
            )
    else:
        lines += ["", "resnet8x4 step: not measured (scns.models.create_model unavailable)."]
    lines += [
        "",
        "SampleTopK table build (one refresh):",
        "",
        "| backend | N | D | top_k | wall s | CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["knn_build"]:
        lines.append(
            f"| {r['backend']} | {r['N']} | {r['D']} | {r['top_k']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} |"
        )
    return "\n".join(lines)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 repeats and a 10,000-row kNN build")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per measurement (default 10; quick 3)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--faiss", action="store_true", help="also time the faiss kNN build")
    parser.add_argument("--json", default=None, help="also write the JSON results to this path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 10)
    labels = torch.arange(N) % C  # C equal classes of N / C samples

    loadavg_start = _loadavg()
    knn_rows, topk_sampler = bench_knn_build(
        labels, 10_000 if args.quick else N, 1024, ["torch", "faiss"] if args.faiss else ["torch"]
    )
    if topk_sampler.index.n != N:  # quick mode: a random table of the right shape for the sampling timing
        topk_sampler = SampleTopKSampler(labels, top_k=1024)
        topk_sampler.load_state_dict({"table": torch.randint(0, N, (N, 1024), dtype=torch.int32)})
    model_step = bench_model_step(repeats)
    feat_dim = model_step["feature_dim"] if model_step else 256
    results = {
        "env": {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "repeats": repeats,
            "loadavg_start": loadavg_start,
        },
        "samplers": bench_samplers(labels, topk_sampler, repeats),
        "term": bench_term(labels, [256, 1024, 4096, 16_384], feat_dim, repeats),
        "model_step": model_step,
        "knn_build": knn_rows,
    }
    results["env"]["loadavg_end"] = _loadavg()
    print(markdown(results))
    print()
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
