"""Checkpoint I/O, kept importable from its former place: it lives in :mod:`scns.checkpoint` (the
bottom layer, so similarity caches and model loaders may use it) and the model loader in
:mod:`scns.models`."""

from __future__ import annotations

from scns.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    atomic_write_bytes,
    capture_rng_state,
    file_digest,
    load_checkpoint,
    resolve_checkpoint_path,
    restore_rng_state,
    save_checkpoint,
    serialize_checkpoint,
    with_filename,
)
from scns.models.zoo import load_trained_model

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "atomic_write_bytes",
    "capture_rng_state",
    "file_digest",
    "load_checkpoint",
    "load_trained_model",
    "resolve_checkpoint_path",
    "restore_rng_state",
    "save_checkpoint",
    "serialize_checkpoint",
    "with_filename",
]
