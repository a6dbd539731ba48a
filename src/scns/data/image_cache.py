"""Image files decoded once into a cached uint8 array: shared by Tiny-ImageNet and the folder dataset.

``cached_images(...)`` keys the cache by every file's relative path, size, mtime and label (and the
decoded size), so any change to the files gives a new key, and reads or writes
``$SCNS_CACHE_DIR/<kind>/<split>-<key>.npz`` atomically. A damaged cache file warns and is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from scns.data.errors import DatasetError

_CHUNK = 256  # images per decoding task

Decoder = Callable[[Path], np.ndarray]
"""``decode(path) -> uint8 [size, size, 3]``; raises ``DatasetError`` for a bad file."""


def cache_dir() -> Path:
    """``$SCNS_CACHE_DIR`` (default ``~/.cache/scns``)."""
    return Path(os.environ.get("SCNS_CACHE_DIR") or "~/.cache/scns").expanduser()


def decode_images(paths: list[Path], decode: Decoder, size: int, workers: int | None = None) -> np.ndarray:
    """Decode ``paths`` with a small thread pool (Pillow releases the GIL) -> uint8 [N, size, size, 3]."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def decode_chunk(start: int) -> None:
        for i in range(start, min(start + _CHUNK, len(paths))):
            out[i] = decode(paths[i])

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(decode_chunk, range(0, len(paths), _CHUNK)):
            pass  # iterating re-raises the first DatasetError
    return out


def files_key(version: str, folder: Path, split: str, paths: list[Path], labels: np.ndarray) -> str:
    """Hash of ``version``, ``split`` and every file's relative path, size, mtime and label."""
    digest = hashlib.sha256(f"{version}\n{split}\n".encode())
    for path, label in zip(paths, labels.tolist(), strict=True):
        try:
            st = path.stat()
        except OSError as exc:
            raise DatasetError(f"{path} is missing or unreadable ({exc})") from exc
        digest.update(f"{path.relative_to(folder)}\t{st.st_size}\t{st.st_mtime_ns}\t{label}\n".encode())
    return digest.hexdigest()[:24]


def read_cache(path: Path, labels: np.ndarray, size: int, what: str) -> np.ndarray | None:
    """Cached images when ``path`` holds a complete, consistent array; None otherwise (a damaged
    file warns ``ignoring corrupt <what> cache``)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, cached_labels = npz["images"], npz["labels"]
        if images.shape != (len(labels), size, size, 3) or images.dtype != np.uint8:
            raise ValueError(f"images are {images.dtype} {images.shape}")
        if not np.array_equal(cached_labels, labels):
            raise ValueError("labels differ from the files")
        return images
    except Exception as exc:  # any failure means the cache cannot be trusted
        warnings.warn(f"ignoring corrupt {what} cache {path} ({exc}); rebuilding it", stacklevel=3)
        return None


def write_cache(path: Path, images: np.ndarray, labels: np.ndarray, what: str) -> None:
    """Write ``path`` atomically (temp file, fsync, rename); a failure only warns."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
            tmp = Path(f.name)
            np.savez(f, images=images, labels=labels)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(
            f"could not write the {what} cache {path} ({exc}); next load decodes again", stacklevel=3
        )
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def cached_images(
    kind: str,
    version: str,
    folder: Path,
    split: str,
    paths: list[Path],
    labels: np.ndarray,
    size: int,
    decode: Decoder,
    what: str,
) -> np.ndarray:
    """uint8 [N, size, size, 3] images of ``paths``: from ``cache_dir()/kind`` when the files are
    unchanged, else decoded with ``decode`` and cached.

    Args:
        kind: cache subfolder (``tiny_imagenet``, ``folder``). version: part of the key; changes
            with the decoded format (and with every decoding option, such as a resize). folder: root the paths are keyed relative to. what: the dataset's name
            in warnings.
    """
    key = files_key(version, folder, split, paths, labels)
    path = cache_dir() / kind / f"{split}-{key}.npz"
    images = read_cache(path, labels, size, what)
    if images is None:
        images = decode_images(paths, decode, size)
        write_cache(path, images, labels, what)
    return images
