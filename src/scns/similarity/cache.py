"""On-disk cache of similarity matrices, keyed by what determines them.

A matrix is stored as ``<dir>/<source>-<key>.pt`` where ``key`` is the sha256 of a canonical JSON
of (cache format, source name, the source's fingerprint, the class list). A source's fingerprint
holds its options and, for model sources, the checkpoint's sha256, so any change there is a new
key. Files are written atomically; a file that cannot be read, or whose stored key or checksum does
not match, is ignored (with a warning) and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scns.checkpoint import atomic_write_bytes

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$SCNS_CACHE_DIR/similarity`` when set, else ``~/.cache/scns/similarity``."""
    root = os.environ.get("SCNS_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "scns"
    return base / "similarity"


def cache_key(source: str, fingerprint: dict[str, Any], class_names: list[str]) -> str:
    """sha256 hex of the canonical JSON of everything that determines a matrix."""
    payload = {"format": CACHE_FORMAT, "source": source, "fingerprint": fingerprint, "classes": class_names}
    # default=str: NumPy scalars and paths in options hash by their text
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _matrix_digest(matrix: Tensor) -> str:
    return hashlib.sha256(matrix.contiguous().numpy().tobytes()).hexdigest()


class SimilarityCache:
    """A folder of cached [C, C] matrices.

    Args:
        directory: where the files live (default :func:`default_cache_dir`).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()

    def path(self, source: str, key: str) -> Path:
        """The file that holds ``key`` (the source name keeps listings readable)."""
        return self.directory / f"{source}-{key}.pt"

    def load(self, source: str, key: str, num_classes: int) -> Tensor | None:
        """The cached float32 [C, C] matrix, or None when absent or not trustworthy."""
        path = self.path(source, key)
        if not path.is_file():
            return None
        try:
            blob = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
            matrix = blob["matrix"]
            ok = (
                blob.get("format") == CACHE_FORMAT
                and blob.get("key") == key
                and isinstance(matrix, Tensor)
                and matrix.dtype == torch.float32
                and tuple(matrix.shape) == (num_classes, num_classes)
                and blob.get("digest") == _matrix_digest(matrix)
            )
        except Exception as err:  # torch.load raises many types for torn or foreign files
            warnings.warn(f"similarity cache file {path} is unreadable ({err}); recomputing", stacklevel=3)
            return None
        if not ok:
            warnings.warn(
                f"similarity cache file {path} does not match its key or checksum; recomputing", stacklevel=3
            )
            return None
        return matrix

    def save(self, source: str, key: str, matrix: Tensor, meta: dict[str, Any] | None = None) -> Path:
        """Write ``matrix`` (float32 [C, C]) atomically; returns the file's path."""
        matrix = matrix.detach().to(device="cpu", dtype=torch.float32).contiguous()
        blob = {
            "format": CACHE_FORMAT,
            "key": key,
            "digest": _matrix_digest(matrix),
            "matrix": matrix,
            "meta": meta or {},
        }
        buffer = io.BytesIO()
        torch.save(blob, buffer)
        path = self.path(source, key)
        atomic_write_bytes(path, buffer.getvalue())
        return path
