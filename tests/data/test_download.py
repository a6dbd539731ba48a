"""``download_and_extract`` against a local HTTP server serving generated archives."""

from __future__ import annotations

import hashlib
import http.server
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scns.data import Archive, DatasetError, download_and_extract, get_spec
from scns.data import cifar as cifar_module


class _Server:
    """A 127.0.0.1 HTTP server over ``directory`` that counts GET requests."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(directory))
        )
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    served = tmp_path / "served"
    served.mkdir()
    srv = _Server(served)
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _tar_gz(source: Path, out: Path) -> str:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(source, arcname=source.name)
    return _md5(out)


@pytest.fixture
def cifar_archive(tmp_path: Path, server: _Server, cifar_writer: Callable[..., Any]) -> tuple[Any, Archive]:
    """A generated cifar-10-batches-py/ packed as cifar-10-python.tar.gz on the local server."""
    fake = cifar_writer(tmp_path / "src", "cifar10")
    md5 = _tar_gz(fake.folder, server.directory / "cifar-10-python.tar.gz")
    return fake, Archive(server.url("cifar-10-python.tar.gz"), md5, "cifar-10-batches-py")


def test_download_then_load(tmp_path: Path, server: _Server, cifar_archive: tuple[Any, Archive]) -> None:
    fake, archive = cifar_archive
    root = tmp_path / "root"
    layout = replace(cifar_module.CIFAR10, archive=archive)  # the injectable url and md5
    data = cifar_module.load_cifar(layout, root, "test", download=True)
    np.testing.assert_array_equal(data.labels.numpy(), fake.labels["test"])
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]  # no temp files left
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        assert (root / "cifar-10-batches-py" / name).read_bytes() == (fake.folder / name).read_bytes()
    assert server.requests == ["/cifar-10-python.tar.gz"]
    cifar_module.load_cifar(layout, root, "train", download=True)  # complete folder: no second fetch
    assert len(server.requests) == 1


def test_existing_folder_is_not_refetched(
    tmp_path: Path, server: _Server, cifar_archive: tuple[Any, Archive]
) -> None:
    _, archive = cifar_archive
    root = tmp_path / "root"
    (root / archive.folder).mkdir(parents=True)
    assert (
        download_and_extract(archive.url, archive.md5, root, folder=archive.folder) == root / archive.folder
    )
    assert server.requests == []


def test_incomplete_folder_is_replaced_when_downloading(
    tmp_path: Path, server: _Server, cifar_archive: tuple[Any, Archive]
) -> None:
    _, archive = cifar_archive
    root = tmp_path / "root"
    (root / archive.folder).mkdir(parents=True)
    (root / archive.folder / "data_batch_1").write_bytes(b"stale partial file")
    layout = replace(cifar_module.CIFAR10, archive=archive)
    data = cifar_module.load_cifar(layout, root, "train", download=True)
    assert len(data) == 30 and len(server.requests) == 1
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]


def test_bad_checksum_leaves_nothing(
    tmp_path: Path, server: _Server, cifar_archive: tuple[Any, Archive]
) -> None:
    _, archive = cifar_archive
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DatasetError) as err:
        download_and_extract(archive.url, "0" * 32, root, folder=archive.folder, progress=False)
    msg = str(err.value)
    assert "md5 mismatch" in msg and "0" * 32 in msg and archive.md5 in msg and "--download" in msg
    assert list(root.iterdir()) == []


def test_http_error_is_clear(tmp_path: Path, server: _Server) -> None:
    with pytest.raises(DatasetError, match="could not download .*missing.tar.gz"):
        download_and_extract(
            server.url("missing.tar.gz"), "0" * 32, tmp_path / "r", folder="x", progress=False
        )
    assert list((tmp_path / "r").iterdir()) == []


def test_archive_without_expected_folder(tmp_path: Path, server: _Server) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "file.txt").write_text("hello")
    md5 = _tar_gz(other, server.directory / "wrong.tar.gz")
    root = tmp_path / "root"
    with pytest.raises(
        DatasetError, match=r"does not contain the folder 'cifar-10-batches-py' \(found \['other'\]\)"
    ):
        download_and_extract(
            server.url("wrong.tar.gz"), md5, root, folder="cifar-10-batches-py", progress=False
        )
    assert list(root.iterdir()) == []


def test_damaged_archive_with_matching_md5(tmp_path: Path, server: _Server) -> None:
    broken = server.directory / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    root = tmp_path / "root"
    with pytest.raises(DatasetError, match="could not unpack"):
        download_and_extract(server.url("broken.tar.gz"), _md5(broken), root, folder="x", progress=False)
    assert list(root.iterdir()) == []


def test_zip_archive_tiny_imagenet(
    tmp_path: Path, server: _Server, tiny_writer: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path / "cache"))
    folder = tiny_writer(tmp_path / "src")
    zip_path = server.directory / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    archive = Archive(server.url("tiny-imagenet-200.zip"), _md5(zip_path), "tiny-imagenet-200")
    root = tmp_path / "root"
    monkeypatch.setattr("scns.data.tiny_imagenet.ARCHIVE", archive)
    data = get_spec("tiny_imagenet").loader(root, "test", True)
    assert len(data) == 4 and data.wnids == ["n0100", "n0200", "n0300"]
    assert sorted(p.name for p in root.iterdir()) == ["tiny-imagenet-200"]


def test_official_archives_are_declared() -> None:
    """URLs and md5s of the official releases (as published with torchvision and the CS231n course)."""
    assert get_spec("cifar10").archive == Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
    )
    assert get_spec("cifar100").archive == Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
    )
    assert get_spec("tiny_imagenet").archive == Archive(
        "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        "90528d7ca1a48142e341f4ef8d21d0de",
        "tiny-imagenet-200",
    )
    assert get_spec("digits").archive is None
