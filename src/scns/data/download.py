"""Fetch a dataset archive over HTTP(S), verify its md5 and unpack it atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from scns.data.errors import DatasetError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """Where a dataset's official archive lives.

    Attributes:
        url: download address.
        md5: hex md5 of the whole archive file.
        folder: the top-level folder the archive unpacks to (``"cifar-10-batches-py"``).
    """

    url: str
    md5: str
    folder: str

    def fetch(self, dest_root: str | Path, *, overwrite: bool = False, progress: bool = True) -> Path:
        """``download_and_extract`` with this archive's url, md5 and folder."""
        return download_and_extract(
            self.url, self.md5, dest_root, folder=self.folder, overwrite=overwrite, progress=progress
        )


def _fetch(url: str, dest: Path, timeout: float, progress: bool) -> str:
    """Stream ``url`` into ``dest``; returns the md5 of what was written."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetError(
            f"could not download {url}: {exc}. Check the network connection, or download the file by "
            f"hand and unpack it into the data directory."
        ) from exc
    return digest.hexdigest()


def _extract(archive: Path, into: Path) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(into)  # zipfile strips absolute paths and '..' itself
        else:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(into, filter="data")
                else:  # Python < 3.10.12: refuse members escaping the target by hand
                    root = into.resolve()
                    for member in tf.getmembers():
                        if not (root / member.name).resolve().is_relative_to(root):
                            raise DatasetError(f"archive {archive} has an unsafe member path {member.name!r}")
                    tf.extractall(into)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DatasetError(f"could not unpack {archive}: {exc}; the download is damaged, retry it") from exc


def download_and_extract(
    url: str,
    md5: str,
    dest_root: str | Path,
    *,
    folder: str,
    overwrite: bool = False,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` (a .tar.gz/.tgz or .zip), check its md5, unpack it to ``dest_root/folder``.

    Nothing is fetched when ``dest_root/folder`` already exists (unless ``overwrite``). The archive
    is streamed and unpacked inside a temporary folder in ``dest_root``; only a complete, verified
    ``folder`` is renamed into place, so a failure never leaves a half-written dataset behind.

    Returns:
        The path ``dest_root/folder``.

    Raises:
        DatasetError: network failure, md5 mismatch (the file is deleted), a damaged archive, or an
            archive that does not contain ``folder`` at its top level.
    """
    dest_root = Path(dest_root)
    target = dest_root / folder
    if target.exists() and not overwrite:
        return target
    dest_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".download-{folder}-", dir=dest_root))
    try:
        file = work / (url.rstrip("/").rsplit("/", 1)[-1] or "archive")
        got = _fetch(url, file, timeout, progress)
        if got != md5.lower():
            raise DatasetError(
                f"md5 mismatch for {url}: expected {md5}, got {got}. The download is damaged or the "
                f"file on the server changed; it was deleted, run again with --download to retry."
            )
        unpacked = work / "unpacked"
        _extract(file, unpacked)
        file.unlink()
        if not (unpacked / folder).is_dir():
            found = sorted(p.name for p in unpacked.iterdir())
            raise DatasetError(f"archive {url} does not contain the folder {folder!r} (found {found})")
        if target.exists():  # overwrite: swap the old copy out before moving the new one in
            old = work / "old"
            os.replace(target, old)
        os.replace(unpacked / folder, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
