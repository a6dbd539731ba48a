"""The few collective operations the layers below ``train`` need under DDP, each an identity in a
single process: whether a distributed run is active, this process's rank, an in-place all-reduce,
an all-gather concatenated along dim 0, and a broadcast of a picklable object.

This module sits at the bottom of the package (it imports nothing from scns), so memory banks,
losses and negative sources share one implementation with the engine (:mod:`scns.train.distributed`,
which adds start-up, wrapping and shutdown).
"""

from __future__ import annotations

import socket
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

_REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}


def active() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a distributed run)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes (1 without a distributed run)."""
    return dist.get_world_size() if active() else 1


def all_reduce_(tensor: Tensor, op: str = "sum") -> Tensor:
    """In-place all-reduce (sum, min or max) of ``tensor`` across ranks; returns it. Identity for one
    process."""
    if active():
        dist.all_reduce(tensor, op=_REDUCE_OPS[op])
    return tensor


def all_gather_cat(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` [B, ...] concatenated along dim 0 in rank order: [world * B, ...]
    (equal shapes on all ranks). ``tensor`` itself for one process."""
    if not active():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (picklable) on every rank; ``obj`` itself for one process."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago: the rendezvous port of a single-machine
    job started from Python (``torchrun --master_port``, ``init_process_group`` over ``tcp://``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
