"""benchmarks/knn_scale.py at a reduced N: the IVF table stays within its memory bound and is sound."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "knn_scale.py"


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss not installed (pip install faiss-cpu)"
)
def test_ivf_build_at_200k_stays_within_the_memory_bound(tmp_path: Path) -> None:
    out = tmp_path / "knn.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "200000", "--classes", "200", "--top-k", "128", "--nprobe", "64"]
        + ["--queries", "256", "--threads", "2", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=1200,
    )
    result = json.loads(out.read_text())
    run = result["runs"][0]
    assert run["other_class_in_table"]
    assert run["peak_is_build_only"]
    # the docstring's bound 4 N (2 D + top_k) bytes, plus 25% for faiss's own buffers and the training sample
    assert run["peak_over_pre_build_rss_gib"] <= 1.25 * result["memory_bound_gib"]
    # approximate, but far harder than uniform negatives and never harder than exact ones
    exact, uniform = result["exact_reference"]["mean_cos"], result["uniform_other_class_mean_cos"]
    assert uniform + 0.5 * (exact - uniform) < run["mean_cos_table"] <= exact + 1e-6


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("knn_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss not installed (pip install faiss-cpu)"
)
def test_bank_mode_measures_a_runs_memory_bank_against_its_training_labels(
    tmp_path: Path, data_dir: Path
) -> None:
    import torch

    from scns.data.datasets import load_dataset
    from scns.train.checkpoint import save_checkpoint

    labels = load_dataset("cifar10", data_dir, "train").labels
    n, dim, top_k, queries = len(labels), 8, 16, 64
    bank = torch.randn(n, dim, generator=torch.Generator().manual_seed(3))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"data:\n  dataset: cifar10\n  data_dir: {data_dir}\n")
    save_checkpoint(run / "checkpoints" / "last.pt", {"objective": {"contrast.bank.memory": bank}})
    out = tmp_path / "bank.json"
    _load_script().main(
        ["--bank", str(run), "--top-k", str(top_k), "--queries", str(queries), "--nprobe", "4"]
        + ["--threads", "1", "--json", str(out)]
    )
    result = json.loads(out.read_text())
    assert (result["n"], result["dim"], result["classes"]) == (n, dim, 10)
    assert result["features"] == f"memory bank contrast.bank.memory of {run}"
    assert result["runs"][0]["other_class_in_table"]
    # the exact reference, by a loop over the same anchors (the script draws them with seed + 1)
    feats = torch.nn.functional.normalize(bank, dim=1).numpy()
    anchors = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:queries].tolist()
    means = []
    for a in anchors:
        sims = feats @ feats[a]
        sims[labels.numpy() == int(labels[a])] = -np.inf
        means.append(np.sort(sims)[-top_k:].mean())
    assert abs(result["exact_reference"]["mean_cos"] - float(np.mean(means))) < 1e-4
