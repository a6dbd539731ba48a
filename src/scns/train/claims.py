"""Claims on grid cells, so several ``scns grid`` workers can share one grid directory.

A worker (one per GPU, or one per machine on a shared filesystem) holds an exclusive lock on
``<run_dir>/.claim`` while it runs that cell; another worker that cannot take the lock skips the
cell. The lock is :class:`scns.runlock.FileLock` (the mechanism of the run lock too): the kernel
drops it when the holder exits, however it exits (a killed worker leaves no stale claim), and the
file stays behind naming its last holder for ``scns grid --list``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scns.rundir import RunDir
from scns.runlock import FileLock, lock_holder


class CellClaim:
    """An exclusive claim on one run directory; :meth:`release` it (or use ``with``)."""

    def __init__(self, lock: FileLock) -> None:
        self._lock = lock

    @classmethod
    def acquire(cls, run_dir: str | Path) -> CellClaim | None:
        """Claim ``run_dir`` for this worker; None when another worker (process) holds it."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock.acquire(RunDir(run_dir).claim)
        return None if lock is None else cls(lock)

    @property
    def held(self) -> bool:
        return self._lock.held

    def release(self) -> None:
        """Give the cell up; idempotent."""
        self._lock.release()

    def __enter__(self) -> CellClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """Who holds ``run_dir`` now (host, pid, since), or None when no worker does."""
    return lock_holder(RunDir(run_dir).claim)
