"""Atomic, resumable checkpoints.

A checkpoint is one ``torch.save`` file holding everything a run needs to continue: model,
optimizer, objective (memory banks, sampler tables, loss normalisers), epoch, step, the resolved
config and RNG states. It is written to a temporary file in the same directory, flushed and
fsynced, then renamed over the target, so a crash at any moment leaves either the old or the new
checkpoint, never a torn one; a failed write (a full disk) removes its temporary file.

A checkpoint holds tensors and plain values only (dicts, lists, numbers, strings) and is always read
with ``torch.load(weights_only=True)``: a file crafted to run code when unpickled is refused without
running it. Teachers and shared checkpoints come from other people, so this is the one place scns
reads untrusted files.

This module sits at the bottom of the package, beside :mod:`scns.rundir`: it imports nothing from
scns but the run-directory names and the error base, so every layer may read and write checkpoints.
Rebuilding a model from one is :func:`scns.models.load_trained_model`.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from scns.errors import ScnsError
from scns.rundir import LAST_CHECKPOINT_NAME, RunDir

FORMAT_VERSION = 1


class CheckpointError(ScnsError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model it is loaded into."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename + directory fsync).

    The file gets the mode a plainly written file would (``0o666`` less the umask; an existing
    file's own mode when replacing one). On any failure (a full disk, an interrupt) the temporary
    file is removed and ``path`` is left as it was; an ``OSError`` names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _file_mode(path))
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise with_filename(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def with_filename(err: OSError, path: str | Path) -> OSError:
    """``err`` naming ``path`` (a failed ``os.write`` names no file; the user needs to know which)."""
    if err.filename is not None or err.errno is None:
        return err
    return OSError(err.errno, err.strerror, str(path))


def _file_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would give (mkstemp alone gives 0o600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def serialize_checkpoint(state: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding ``state`` (tensors and plain values only)."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Serialise ``state`` with ``torch.save`` and write it atomically to ``path``."""
    atomic_write_bytes(path, serialize_checkpoint(state))


def resolve_checkpoint_path(path: str | Path, name: str = LAST_CHECKPOINT_NAME) -> Path:
    """Accept a checkpoint file or a run directory (then ``<dir>/checkpoints/<name>``)."""
    path = Path(path)
    if path.is_dir():
        candidate = RunDir(path).checkpoints / name
        if not candidate.is_file():
            raise CheckpointError(
                f"run directory {path} has no checkpoint {candidate.relative_to(path)}; "
                "was the run started, and did it finish at least one epoch?"
            )
        return candidate
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (give a .pt file or a run directory)")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (file or run directory).

    Only tensors and plain values are unpickled (``weights_only=True``); anything else is refused
    with :class:`CheckpointError` before it can run.
    """
    path = resolve_checkpoint_path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" (it names {found.group(1)})" if found else ""
        raise CheckpointError(
            f"refused to load {path}: it holds objects other than tensors and plain values{what}. "
            "scns reads checkpoints with weights_only=True, so nothing in the file was run. It was not "
            "written by scns, or it was altered: use checkpoints only from people you trust"
        ) from None
    except Exception as err:  # torch raises many types for torn or foreign files
        raise CheckpointError(
            f"cannot read checkpoint {path}: {err}. The file is corrupt or not a scns checkpoint."
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a scns checkpoint (no format_version)")
    state["path"] = str(path)
    return state


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (used to key caches derived from a checkpoint)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU, CUDA if present)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
