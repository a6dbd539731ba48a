"""PyTorch DDP plumbing: start-up from torchrun's environment, reductions, rank-0-only output, and an
orderly shutdown.

``torchrun --nproc_per_node N -m scns train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; the engine
then joins a process group (gloo on CPU, nccl on CUDA), shards each epoch across ranks, averages
gradients with DistributedDataParallel, all-gathers memory-bank updates so every rank holds the
same bank, and lets only rank 0 write files.

Every command that trains runs inside :func:`session`, which ends the process group in order:

1. the DDP wrapper (whose C++ ``Reducer`` holds the process group) and every object built around it
   are released while the group is still registered, then ``gc.collect()``;
2. on success, a barrier: no rank tears down while a peer still works, and a rank returns 0 only
   once every rank has finished;
3. a short pause with the GIL released, so that gloo's worker threads finish dropping the tensors of
   the last collectives (dropping a tensor that Python also references takes the GIL);
4. ``destroy_process_group``, whose destructor joins those worker threads.

Without this order the Reducer was freed last, at some later moment, and the group's destructor
joined a gloo thread while holding the GIL that thread was waiting for: a run that printed its
summary and never exited (issue 22). SIGTERM is turned into :class:`Terminated` so that the same
shutdown runs when torchrun or a scheduler stops the job, as it does for SIGINT (KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import gc
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# the collectives below train (scns.dist), re-exported for the engine
from scns.dist import active as active
from scns.dist import all_reduce_ as all_reduce_
from scns.dist import broadcast_object as broadcast_object
from scns.dist import rank as rank
from scns.errors import ScnsError


class DistributedError(ScnsError, RuntimeError):
    """Another process of a distributed run failed or stopped answering (the CLI exits with 1)."""

    exit_code = 1


class Terminated(SystemExit):
    """The process received SIGTERM (torchrun or a scheduler stopping the job); exit code 128 + 15."""


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


def env_is_rank_zero() -> bool:
    """Rank 0 of a torchrun launch (or a plain process): the one process that writes and reports,
    read from the environment, so it holds before and after the process group exists."""
    return env_world_size() <= 1 or int(os.environ.get("RANK", "0")) == 0


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


# ---------------------------------------------------------------------- wrapping and shutdown

#: Every DDP wrapper made by :func:`wrap` that is still alive; the shutdown checks it is empty.
_LIVE_WRAPPERS: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def wrap(module: nn.Module, device: torch.device, **kwargs: Any) -> nn.Module:
    """``DistributedDataParallel(module)`` on this rank's device, recorded so that :func:`shutdown`
    can tell whether it was released before the process group is destroyed."""
    on_cuda = device.type == "cuda"
    wrapper = nn.parallel.DistributedDataParallel(module, device_ids=[device] if on_cuda else None, **kwargs)
    _LIVE_WRAPPERS.add(wrapper)
    return wrapper


def live_wrappers() -> int:
    """How many DDP wrappers made by :func:`wrap` are still referenced (after a ``gc.collect()``)."""
    gc.collect()
    return len(_LIVE_WRAPPERS)


def _barrier() -> None:
    """All ranks meet (bounded by the process group's timeout, ``train.dist_timeout_s``)."""
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def shutdown(success: bool = True, settle_s: float = 0.05, exit_timeout_s: float = 60.0) -> None:
    """Destroy the process group in order (no-op when none is initialised).

    Call it once the DDP wrappers have been released (see :func:`session`). ``success``: every rank
    got here without an error, so they meet at a barrier first; a failed or interrupted rank skips the
    barrier (its peers may be dead, or inside another collective). Raises :class:`DistributedError`
    when the barrier fails (a peer did not finish). ``exit_timeout_s`` arms a watchdog over the
    teardown after the barrier: should the group's destructor still block, every thread's stack is
    written to stderr and the process exits with code 1 instead of hanging.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    leftover = live_wrappers()
    if leftover:
        print(
            f"warning: rank {dist.get_rank()}: {leftover} DistributedDataParallel wrapper(s) still "
            "referenced while the process group is destroyed; release them first (session(...)"
            ".release_on_exit) or the process may hang at exit",
            file=sys.stderr,
            flush=True,
        )
    error: BaseException | None = None
    if success and dist.get_world_size() > 1:
        try:
            _barrier()
        except Exception as err:  # noqa: BLE001 - reported below, after the group is gone
            error = err
    faulthandler.dump_traceback_later(exit_timeout_s, exit=True, file=2)  # fd 2: works under capture
    try:
        # A gloo worker thread drops the tensors of a finished collective after the waiter has woken;
        # dropping a tensor Python also references takes the GIL. Sleeping releases the GIL so it can,
        # before the group's destructor joins that thread while holding the GIL (issue 22's deadlock).
        time.sleep(settle_s)
        dist.destroy_process_group()
    finally:
        faulthandler.cancel_dump_traceback_later()
    if error is not None:
        raise DistributedError(
            f"a peer did not reach the end of the distributed run ({error}); this rank finished, but the "
            "run did not: check the other ranks' logs"
        ) from error


def cleanup() -> None:
    """Destroy the process group without a barrier (a script's last line; prefer :func:`session`)."""
    shutdown(success=False)


class Session:
    """What :func:`session` yields: register the objects to release before the group goes."""

    def __init__(self) -> None:
        self._releases: list[Callable[[], None]] = []

    def release_on_exit(self, release: Callable[[], None]) -> None:
        """``release()`` runs first when the session ends (latest registered first)."""
        self._releases.append(release)

    def _release_all(self) -> list[BaseException]:
        errors: list[BaseException] = []
        while self._releases:
            try:
                self._releases.pop()()
            except Exception as err:  # noqa: BLE001 - every release runs; errors are reported
                errors.append(err)
        return errors


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """SIGINT/SIGTERM arriving during the shutdown are recorded, not raised (the shutdown is bounded)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in _SIGNALS}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def session() -> Iterator[Session]:
    """The scope of a (possibly distributed) run: one orderly shutdown for every command that trains.

    ::

        with ddp.session() as run:
            run.release_on_exit(trainer.release_distributed)
            summary = trainer.fit()

    On leaving the block, by success, error, Ctrl-C or SIGTERM, the registered releases run, then
    :func:`shutdown` (barrier on success only). SIGTERM inside the block raises :class:`Terminated`
    (exit code 143). An error in the block propagates unchanged; on success a failed barrier raises
    :class:`DistributedError`, so exit code 0 means every rank finished. Without torchrun it only
    runs the releases.
    """
    run = Session()
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main else None
    success = False
    try:
        yield run
        success = True
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        with _signals_deferred() as received:
            errors = run._release_all()
            try:
                shutdown(success=success and not errors)
            except Exception as err:  # noqa: BLE001 - raised below on success, reported on failure
                errors.append(err)
        if success:
            if errors:
                raise errors[0]
            if received:
                raise KeyboardInterrupt if received[0] == signal.SIGINT else Terminated(128 + received[0])
        else:
            for error in errors:
                print(f"warning: during the distributed shutdown: {error}", file=sys.stderr, flush=True)
