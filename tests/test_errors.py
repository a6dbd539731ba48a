"""Every user-facing error of scns derives from ScnsError and keeps the built-in base callers catch."""

from __future__ import annotations

import pytest

from scns.cli import UserError, main
from scns.config import ConfigError
from scns.data import DatasetError
from scns.errors import ScnsError
from scns.registry import UnknownNameError
from scns.rundir import RunDirError
from scns.runlock import RunBusyError
from scns.similarity import SimilarityError
from scns.train.checkpoint import CheckpointError
from scns.train.distributed import DistributedError
from scns.train.engine import NonFiniteLossError

# (error class, the built-in classes existing callers catch it as)
ERRORS = [
    (ConfigError, (ValueError,)),
    (DatasetError, (RuntimeError,)),
    (CheckpointError, (RuntimeError,)),
    (SimilarityError, (RuntimeError,)),
    (RunDirError, (ValueError,)),
    (RunBusyError, (ValueError,)),
    (NonFiniteLossError, (RuntimeError,)),
    (UnknownNameError, (KeyError, ValueError)),
    (UserError, ()),
    (DistributedError, (RuntimeError,)),
]


@pytest.mark.parametrize("cls, builtins", ERRORS, ids=[c.__name__ for c, _ in ERRORS])
def test_error_derives_from_scns_error_and_keeps_its_builtin_bases(cls, builtins):
    assert issubclass(cls, ScnsError)
    for base in builtins:
        assert issubclass(cls, base)
    err = cls("what is wrong; how to fix it")
    assert str(err) == "what is wrong; how to fix it"  # UnknownNameError too: no KeyError quoting


def test_every_error_class_in_the_package_is_a_scns_error():
    """Sweeps the package: a new ``*Error`` class that forgets the base fails here."""
    import importlib
    import inspect
    import pkgutil

    import scns

    found = set()
    for info in pkgutil.walk_packages(scns.__path__, "scns."):
        if info.name.startswith("scns.__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == info.name and name.endswith("Error"):
                found.add(obj)
    missing = sorted(c.__qualname__ for c in found if not issubclass(c, ScnsError))
    assert not missing, f"derive these from scns.errors.ScnsError: {missing}"
    assert {c for c, _ in ERRORS} <= found


@pytest.mark.parametrize(
    "error, code",
    [
        (DatasetError("no file at /nowhere; pass --data-dir"), 2),
        (DistributedError("rank 1 stopped; resume"), 1),
    ],
)
def test_cli_prints_a_scns_error_without_traceback_and_exits_with_its_code(monkeypatch, capsys, error, code):
    """Bad input exits 2; a failure of the run itself (a peer process died) exits 1."""
    import scns.commands.models as models_cmd

    def fail(args):
        raise error

    real = models_cmd.add_parser

    def add_parser(subparsers):
        real(subparsers)
        subparsers.choices["models"].set_defaults(run=fail)

    monkeypatch.setattr(models_cmd, "add_parser", add_parser)
    assert main(["models"]) == code
    err = capsys.readouterr().err
    assert err == f"scns models: error: {error}\n" and "Traceback" not in err
