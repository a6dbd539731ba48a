"""A run killed with SIGKILL and resumed ends exactly like an uninterrupted one (banks and tables included)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from digits_runs import assert_same_state, digits_config

from scns.config import Config
from scns.train import checkpoint as ckpt
from scns.train.engine import MACHINE_METRICS, Trainer

# Slow: six processes, each importing torch (~15 CPU-s). The default run checks the same exact resume
# (model, banks, kNN table, metrics) in-process after a crash mid-epoch:
# tests/train/test_engine.py::test_resume_after_crash_mid_epoch_matches_uninterrupted_run[sample_topk].
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]


def config(**overrides) -> Config:
    """Three deterministic epochs of eight steps with a one-cycle schedule (a resume lands mid-schedule),
    banks prefilled as a user's run is (the prefilled bank and the table built from it are compared)."""
    return digits_config(
        **{
            "optim.schedule": "onecycle",
            "optim.lr": 0.05,
            "train.epochs": 3,
            "train.max_steps_per_epoch": 8,
            "train.deterministic": True,
            "contrast.bank_prefill": True,
            **overrides,
        }
    )


def metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in MACHINE_METRICS} for line in lines]


# Both runs are separate processes with the same thread count: float reductions (and so the weights)
# depend on the number of threads.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train_command(cfg: Config, run_dir) -> list[str]:
    path = run_dir.parent / f"{run_dir.name}.yaml"
    cfg.save(path)
    return [
        sys.executable,
        "-m",
        "scns",
        "train",
        "--config",
        str(path),
        "--out-dir",
        str(run_dir.parent),
        "--name",
        run_dir.name,
    ]


def run_uninterrupted(cfg: Config, run_dir) -> None:
    done = subprocess.run(train_command(cfg, run_dir), env=ENV, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def kill_during_epoch_two_then_resume(cfg: Config, run_dir):
    env = ENV
    proc = subprocess.Popen(
        train_command(cfg, run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 180
    # once epoch 1's checkpoint exists the process is inside epoch 2 (index 1 done): kill it there
    while not (run_dir / "checkpoints" / "last.pt").exists() or ckpt.load_checkpoint(run_dir)["epoch"] < 1:
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("training made no progress")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert ckpt.load_checkpoint(run_dir)["epoch"] in (1, 2)  # killed before the run finished
    resumed = subprocess.run(
        [sys.executable, "-m", "scns", "train", "--resume", str(run_dir)],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]


@pytest.mark.parametrize("kind", ["supervised-sample_topk", "distill-crd"])
def test_sigkill_and_resume_equals_uninterrupted(tmp_path, kind):
    if kind.startswith("distill"):
        Trainer.create(
            config(**{"train.epochs": 1, "train.max_steps_per_epoch": 2}), tmp_path / "teacher"
        ).fit()
        cfg = config(
            **{
                "train.objective": "distill",
                "distill.method": "crd",
                "distill.teacher": str(tmp_path / "teacher"),
                "contrast.sampler": "sample_topk",
                "contrast.top_k": 16,
            }
        )
    else:
        cfg = config(**{"contrast.sampler": "sample_topk", "contrast.top_k": 16, "contrast.refresh_every": 1})
    run_uninterrupted(cfg, tmp_path / "ref")
    kill_during_epoch_two_then_resume(cfg, tmp_path / "killed")

    reference = ckpt.load_checkpoint(tmp_path / "ref")
    final = ckpt.load_checkpoint(tmp_path / "killed")
    assert final["epoch"] == reference["epoch"] == 3
    for name, tensor in reference["model"].items():
        assert torch.equal(tensor, final["model"][name]), name
    expected = reference["objective"]
    assert set(expected) == set(final["objective"]) and any("bank" in k for k in expected)
    assert_same_state(expected, final["objective"])  # memory banks, NCE normalisers, sampler tables
    assert expected["negatives._extra_state"]["sampler"]["table"].shape[1] == 16  # the kNN table was compared
    assert metrics(tmp_path / "ref") == metrics(tmp_path / "killed")
