"""Static checks: ``mypy`` over src/scns (settings in pyproject.toml).

The package ships ``py.typed``, so its annotations are a promise to its users; this test keeps it.
A fresh run costs about 30 CPU-seconds (mostly reading torch's annotations), a sixth of the default
run's budget, so it is marked ``slow``; ``.ci/run`` runs ``mypy`` itself on every submission, and
mypy's cache (``.mypy_cache``) makes a repeated run take about a second.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed: pip install -e '.[dev]' installs it",
)
def test_mypy_finds_no_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mypy src/scns reports:\n{result.stdout}{result.stderr}"
