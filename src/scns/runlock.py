"""Exclusive locks on files of a run directory: one writer per run, one grid worker per cell.

A lock is an ``flock`` on a small file that names its holder (pid, host, start time, command) as
JSON. The kernel drops the lock when the holder exits, however it exits, so a killed process never
leaves a lock that blocks anyone: the file it leaves behind only names it. On NFS, Linux maps
``flock`` to the server's byte-range locks, so processes on several machines exclude each other too.

Two locks use this one mechanism:

* the **run lock** (``<run>/.lock``, :func:`acquire_run_lock`): taken by ``Trainer.create`` /
  ``Trainer.resume`` and held until the run stops; a second writer is refused with a message naming
  the holder. A clean release removes the file, so a file found with a holder in it was left by a
  process that died holding it: the next writer takes it over and says so.
* the **grid claim** (``<run>/.claim``, :mod:`scns.train.claims`): a grid worker's claim on a cell.

This module imports nothing from scns but :mod:`scns.rundir`, so every layer may use it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from scns.rundir import RunDir, RunDirError


class RunBusyError(RunDirError):
    """Another process holds the run directory's lock (the message names it)."""


def holder_record() -> dict[str, Any]:
    """Who this process is: written into a lock file it holds."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.time(),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
    }


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 123 on host h since 2026-11-30 06:40:00 UTC (scns train ...)`` from a holder record."""
    if not holder:
        return "another process"
    since = holder.get("since")
    when = (
        time.strftime(" since %Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
        if isinstance(since, (int, float))
        else ""
    )
    command = f" ({holder['command']})" if holder.get("command") else ""
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}{when}{command}"


class FileLock:
    """An exclusive ``flock`` on one file; :meth:`release` it (or use ``with``).

    ``previous`` is the holder record the file held when this lock was taken (None for a new or
    cleanly released file): a record there means its process died while holding the lock.
    """

    def __init__(self, path: Path, fd: int, previous: dict[str, Any] | None) -> None:
        self.path = path
        self._fd: int | None = fd
        self.previous = previous

    @classmethod
    def acquire(cls, path: str | Path) -> FileLock | None:
        """Lock ``path`` (created when missing) for this process; None when another holds it.

        Not re-entrant: a second acquire of a held file from the same process is refused too.
        """
        path = Path(path)
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError as err:
                os.close(fd)
                raise RunDirError(
                    f"cannot lock {path}: {err.strerror}. This filesystem does not support file locks; "
                    "put the run directory on a local disk or an NFS mount with locking"
                ) from None
            # a holder that released by removing the file: we locked a file no longer at `path`
            if _same_file(fd, path):
                try:
                    previous = _read_record(fd)
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, json.dumps(holder_record()).encode(), 0)
                except OSError:  # a full disk: give the lock back rather than hold it unnamed
                    os.close(fd)
                    raise
                return cls(path, fd, previous)
            os.close(fd)
        raise RunDirError(f"cannot lock {path}: it keeps being replaced by another process")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self, remove: bool = False) -> None:
        """Give the lock up; ``remove`` deletes the file first (a clean exit leaves none). Idempotent."""
        if self._fd is None:
            return
        if remove and _same_file(self._fd, self.path):
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # like a file object: a lock dropped unreleased is closed, not leaked
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _read_record(fd: int) -> dict[str, Any] | None:
    data = os.pread(fd, 1 << 16, 0)
    if not data.strip():
        return None
    try:
        record = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def lock_holder(path: str | Path) -> dict[str, Any] | None:
    """The record of whoever holds ``path`` now ({} when unreadable), or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_record(fd) or {}
        return None  # we could lock it, so nobody holds it
    finally:
        os.close(fd)


def acquire_run_lock(run_dir: str | Path) -> FileLock:
    """Become the one writer of ``run_dir`` (which must exist); release with ``release(remove=True)``.

    Raises:
        RunBusyError: another process holds it; the message names that process.
        RunDirError: the directory cannot hold a lock file (read-only, not a directory, no locks).
    """
    run_dir = Path(run_dir)
    path = RunDir(run_dir).lock
    try:
        lock = FileLock.acquire(path)
    except OSError as err:
        raise RunDirError(
            f"cannot write to run directory {run_dir}: {err.strerror}. Choose a writable --out-dir"
        ) from None
    if lock is None:
        raise RunBusyError(
            f"run directory {run_dir} is being written by {describe_holder(lock_holder(path))}; a run has "
            "one writer. Wait for that process to finish (or stop it), or start a new run with another --name"
        )
    if lock.previous is not None:
        print(
            f"scns: note: {run_dir} was held by {describe_holder(lock.previous)}, which ended without "
            "releasing it (killed?); taking it over",
            file=sys.stderr,
        )
    return lock
