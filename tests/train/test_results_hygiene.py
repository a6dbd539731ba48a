"""Grid results are committed, their student checkpoints never: a CRD student's checkpoint holds two
45,000-row memory banks (~50 MB), and committing a few of them makes a submission too big to land."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scns.train.protocols import PROTOCOLS

ROOT = Path(__file__).resolve().parents[2]


def _ignored(paths: list[str]) -> set[str]:
    """The paths (relative to the checkout) that .gitignore ignores, whether or not they are tracked."""
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1: none ignored
        pytest.skip(f"git check-ignore failed: {done.stderr.strip()}")
    return set(done.stdout.split())


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists() or not (ROOT / ".gitignore").is_file(),
    reason="needs a git checkout of the project",
)
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_only_teacher_checkpoints_of_a_grid_are_committable(protocol: str) -> None:
    cells = PROTOCOLS[protocol]()
    paths = {
        cell.name: f"benchmarks/results/{protocol}/runs/{cell.name}/checkpoints/last.pt" for cell in cells
    }
    ignored = _ignored(list(paths.values()))
    for cell in cells:
        is_teacher = "teacher" in cell.settings
        assert (paths[cell.name] in ignored) != is_teacher, (
            f"{protocol}/{cell.name}: its checkpoint is {'ignored' if is_teacher else 'committable'}; "
            "teachers' checkpoints are committed (later cells need them), students' never"
        )
