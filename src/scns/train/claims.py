"""Claims on grid cells, so several ``scns grid`` workers can share one grid directory.

A worker (one per GPU, or one per machine on a shared filesystem) holds an exclusive ``flock`` on
``<run_dir>/.claim`` while it runs that cell; another worker that cannot take the lock skips the
cell. The kernel drops the lock when the holder exits, however it exits (a killed worker leaves no
stale claim), and the file stays behind naming its last holder for ``scns grid --list``. On NFS,
Linux maps ``flock`` to the server's byte-range locks, so workers on several machines can share a
directory there too.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from scns.rundir import RunDir


class CellClaim:
    """An exclusive claim on one run directory; :meth:`release` it (or use ``with``)."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, run_dir: str | Path) -> CellClaim | None:
        """Claim ``run_dir`` for this worker; None when another worker (process) holds it."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(RunDir(run_dir).claim, "a+")  # noqa: SIM115 - held open for the claim's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        handle.seek(0)
        handle.truncate()
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, handle)
        handle.flush()
        return cls(handle)

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        """Give the cell up (closing the file drops the lock); idempotent."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> CellClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """Who holds ``run_dir`` now (host, pid, since), or None when no worker does."""
    path = RunDir(run_dir).claim
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                return {}
        return None  # we could lock it, so nobody holds it
