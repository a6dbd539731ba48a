"""Training throughput: scns's DeviceLoader vs a conventional per-image DataLoader pipeline.

Both pipelines feed the same models (fresh, same seed) with the same optimiser, batch size and
number of steps on real CIFAR-10, on the same machine, in the same process:

* device: ``DeviceLoader`` + ``BatchTransform`` (uint8 split resident on the device, whole-batch
  crop/flip/normalise).
* baseline: a ``torch.utils.data.Dataset`` doing per-sample NumPy random crop (zero padding 4) and
  flip, per-sample normalisation, collated by a ``DataLoader`` with ``--workers`` processes.

Reported per model: images/s of each pipeline; "data share", the fraction of the timed loop spent
waiting for the next batch (for the device loader on CPU that is its whole gather + augmentation
cost; on CUDA the batch is produced asynchronously, so "device loader alone" times it with a
synchronisation, in ms per batch). JSON goes to ``--out``, a Markdown table to stdout.

    python benchmarks/throughput.py --data-dir /tmp/scns-data --steps 30 --out throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from scns.data import get_spec, load_dataset
from scns.data.augment import BatchTransform
from scns.data.loader import DeviceLoader
from scns.models import create_model


class PerImageCifar(Dataset):
    """The conventional pipeline: one sample at a time, crop + flip + normalise in NumPy.

    Returns float [3, H, W] images and int labels; a ``DataLoader`` collates them.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: tuple, std: tuple, pad: int) -> None:
        self.images = images  # uint8 [N, H, W, 3]
        self.labels = labels
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.pad = pad

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        image = self.images[i]
        h, w, _ = image.shape
        padded = np.pad(image, ((self.pad, self.pad), (self.pad, self.pad), (0, 0)))
        dy, dx = np.random.randint(0, 2 * self.pad + 1, size=2)
        crop = padded[dy : dy + h, dx : dx + w]
        if np.random.rand() < 0.5:
            crop = crop[:, ::-1]
        x = (crop.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), int(self.labels[i])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _endless(make: Callable[[int], Iterator]) -> Iterator:
    epoch = 0
    while True:
        yield from make(epoch)
        epoch += 1


class Pipeline:
    """A model, its SGD optimiser and an endless batch iterator; ``run(n)`` times n training steps."""

    def __init__(self, model: nn.Module, batches: Iterator, device: torch.device) -> None:
        self.model = model.train()
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        self.batches = batches
        self.device = device
        self.seconds = 0.0
        self.data_seconds = 0.0
        self.steps = 0

    def run(self, n: int, timed: bool = True) -> None:
        _sync(self.device)
        start = time.perf_counter()
        waiting = 0.0
        for _ in range(n):
            t = time.perf_counter()
            x, y = next(self.batches)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            waiting += time.perf_counter() - t
            logits, _ = self.model(x)
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        _sync(self.device)
        if timed:
            self.seconds += time.perf_counter() - start
            self.data_seconds += waiting
            self.steps += n


def loader_alone(loader: DeviceLoader, steps: int) -> float:
    """Seconds per batch of the device loader by itself (gather + augmentation), synchronised."""
    it = _endless(lambda e: (loader.set_epoch(e), iter(loader))[1])
    next(it)
    _sync(loader.device)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    _sync(loader.device)
    return (time.perf_counter() - start) / steps


def bench_model(name: str, args: argparse.Namespace, data: Any, device: torch.device) -> dict[str, Any]:
    spec = get_spec("cifar10")
    torch.manual_seed(args.seed)
    model = create_model(name, num_classes=spec.num_classes).to(device)
    params = sum(p.numel() for p in model.parameters())

    transform = BatchTransform.from_spec(spec, train=True)
    loader = DeviceLoader(
        data.images, data.labels, args.batch_size, device=device, transform=transform, seed=args.seed
    )
    device_batches = _endless(lambda e: (loader.set_epoch(e), ((b.x, b.y) for b in loader))[1])
    dev = Pipeline(model, device_batches, device)

    torch.manual_seed(args.seed)
    dataset = PerImageCifar(data.images.numpy(), data.labels.numpy(), spec.mean, spec.std, spec.crop_padding)
    dl = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    base = Pipeline(
        create_model(name, num_classes=spec.num_classes).to(device), _endless(lambda e: iter(dl)), device
    )

    dev.run(args.warmup, timed=False)
    base.run(args.warmup, timed=False)
    # Alternate rounds so that drifting background load on a shared machine hits both pipelines alike.
    for r in range(args.rounds):
        n = args.steps // args.rounds + (r < args.steps % args.rounds)
        dev.run(n)
        base.run(n)
    alone = loader_alone(loader, args.steps)

    images = args.steps * args.batch_size
    return {
        "model": name,
        "params": params,
        "device_loader_img_s": images / dev.seconds,
        "baseline_img_s": images / base.seconds,
        "speedup": base.seconds / dev.seconds,
        "device_loader_data_share": dev.data_seconds / dev.seconds,
        "baseline_data_share": base.data_seconds / base.seconds,
        "device_loader_alone_ms_per_batch": alone * 1e3,
        "device_loader_step_ms": dev.seconds / dev.steps * 1e3,
        "baseline_step_ms": base.seconds / base.steps * 1e3,
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Throughput on {meta['device_name']} ({meta['torch_threads']} torch threads, baseline "
        f"num_workers={meta['workers']}), CIFAR-10 train, batch {meta['batch_size']}, "
        f"{meta['steps']} timed steps ({meta['rounds']} alternating rounds) after {meta['warmup']} warm-up",
        "",
        "| model | params | device loader img/s | baseline img/s | speed-up | device loader data share "
        "| baseline data share | device loader alone ms/batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.2f}M | {r['device_loader_img_s']:.0f} | "
            f"{r['baseline_img_s']:.0f} | {r['speedup']:.2f}x | {100 * r['device_loader_data_share']:.1f}% | "
            f"{100 * r['baseline_data_share']:.1f}% | {r['device_loader_alone_ms_per_batch']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("SCNS_DATA_DIR"), help="holds cifar-10-batches-py/"
    )
    parser.add_argument("--models", default="resnet8,resnet20,resnet8x4")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per model and pipeline")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two pipelines")
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader num_workers")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("throughput.json"))
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("no CIFAR-10 location: pass --data-dir or set SCNS_DATA_DIR")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_dataset("cifar10", args.data_dir, "train")
    rows = [bench_model(name, args, data, device) for name in args.models.split(",")]
    meta = {
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"CPU ({os.cpu_count()} cores, {platform.machine()})"
        ),
        "device": device.type,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "seed": args.seed,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(markdown(rows, meta))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
