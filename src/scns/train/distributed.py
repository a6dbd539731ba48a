"""PyTorch DDP plumbing: start-up from torchrun's environment, reductions, rank-0-only output.

``torchrun --nproc_per_node N -m scns train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; the engine
then joins a process group (gloo on CPU, nccl on CUDA), shards each epoch across ranks, averages
gradients with DistributedDataParallel, all-gathers memory-bank updates so every rank holds the
same bank, and lets only rank 0 write files.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


class DistributedError(RuntimeError):
    """Another process of a distributed run failed or stopped answering."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device, timeout_s: float) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun describes (no-op for a single process).

    Returns the context and the device this rank trains on (``cuda:LOCAL_RANK`` on GPUs).
    """
    world = env_world_size()
    if world <= 1:
        return DistContext(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank), device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (sum, min or max) across ranks; identity for one process."""
    if active():
        dist.all_reduce(
            tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op]
        )
    return tensor


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank; identity for one process."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def rank() -> int:
    return dist.get_rank() if active() else 0


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
