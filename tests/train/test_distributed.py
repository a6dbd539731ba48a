"""DDP on CPU (gloo, 2 processes): same weights as one process, identical banks, clear failure of a dead rank."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from scns.config import Config
from scns.dist import free_local_port
from scns.models import MODELS
from scns.models.base import ZooModel
from scns.train import checkpoint as ckpt

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class TinyMLP(ZooModel):
    """BatchNorm-free model: with per-rank BatchNorm statistics DDP could not match one process exactly."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes=num_classes, feature_dim=32)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 32), nn.ReLU())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        features = self.body(x)
        return self.fc(features), features


def tiny_mlp(num_classes: int) -> TinyMLP:
    return TinyMLP(num_classes)


@pytest.fixture
def tiny_mlp_registered(monkeypatch):
    """Register the test model for this test only (the zoo's own tests list the registry)."""
    monkeypatch.setitem(MODELS._factories, "tiny_mlp_ddp_test", tiny_mlp)


def base_config(**overrides) -> Config:
    values = {
        "data.dataset": "digits",
        "data.batch_size": 32,
        "data.augment": False,
        "model.name": "tiny_mlp_ddp_test",
        "optim.schedule": "constant",
        "optim.lr": 0.1,
        "optim.weight_decay": 5e-4,
        "train.epochs": 2,
        "train.max_steps_per_epoch": 4,
        "train.device": "cpu",
        "train.progress": False,
        "train.deterministic": True,
        "train.dist_timeout_s": 60,
    }
    values.update(overrides)
    return Config().with_overrides(values)


def worker(
    rank: int, world: int, port: int, config_dict: dict, run_dir: str, out_dir: str, die_at: int | None
) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    MODELS._factories.setdefault("tiny_mlp_ddp_test", tiny_mlp)  # this process is fresh (spawned)
    from scns.objectives import SupervisedObjective
    from scns.train import distributed as ddp
    from scns.train.engine import Trainer

    if die_at is not None and rank == 1:
        original, calls = SupervisedObjective.after_step, [0]

        def after_step(self):
            calls[0] += 1
            if calls[0] == die_at:
                os._exit(3)  # a crashed process: no clean-up, no goodbye to its peers
            original(self)

        SupervisedObjective.after_step = after_step
    trainer = Trainer.create(Config.from_dict(config_dict), Path(run_dir))
    with ddp.session() as run:  # the commands' orderly shutdown (barrier on success only)
        run.release_on_exit(trainer.release_distributed)
        try:
            trainer.fit()
        except Exception as err:  # noqa: BLE001 - the test reads what the surviving rank reported
            Path(out_dir, f"error{rank}.txt").write_text(f"{type(err).__name__}: {err}")
            raise SystemExit(1) from None
    state = {"model": trainer.model.state_dict()}
    contrast = getattr(trainer.objective, "contrast", None)
    if contrast is not None:
        state["bank"] = contrast.bank.table.clone()
        state["log_z"] = contrast.criterion.log_z.clone()
        state["table"] = trainer.objective.negatives.sampler.state_dict()
    torch.save(state, Path(out_dir, f"rank{rank}.pt"))


def launch(
    config: Config, run_dir: Path, out_dir: Path, die_at: int | None = None, timeout: float = 240
) -> list[int]:
    ctx = multiprocessing.get_context("spawn")
    port = free_local_port()
    procs = [
        ctx.Process(target=worker, args=(r, 2, port, config.to_dict(), str(run_dir), str(out_dir), die_at))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
            pytest.fail(f"a rank was still running after {timeout} s (hang)")
    return [p.exitcode for p in procs]


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_two_processes_reach_the_weights_of_one_with_the_same_global_batch(tmp_path, tiny_mlp_registered):
    from scns.train.engine import Trainer

    config = base_config()
    single = Trainer.create(config, tmp_path / "single")
    single.fit()
    assert launch(config, tmp_path / "ddp", tmp_path) == [0, 0]
    ddp_state = ckpt.load_checkpoint(tmp_path / "ddp")["model"]
    rank1 = torch.load(tmp_path / "rank1.pt")["model"]
    for name, tensor in single.model.state_dict().items():
        # summation order differs (two half-batch gradients averaged); tolerance well above float32 noise
        torch.testing.assert_close(ddp_state[name], tensor, rtol=1e-4, atol=1e-5)
        assert torch.equal(ddp_state[name], rank1[name])  # DDP keeps replicas bit-identical


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_bank_and_sampler_table_identical_across_ranks(tmp_path):
    config = base_config(
        **{
            "model.name": "resnet8",
            "contrast.sampler": "sample_topk",
            "contrast.top_k": 16,
            "contrast.refresh_every": 1,
            "contrast.loss": "nce",
            "contrast.negatives": 64,
            "data.augment": True,
        }
    )
    assert launch(config, tmp_path / "ddp", tmp_path) == [0, 0]
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0["bank"], r1["bank"])
    assert torch.equal(r0["table"]["table"], r1["table"]["table"])
    assert torch.isfinite(r0["log_z"]) and torch.equal(r0["log_z"], r1["log_z"])  # NCE normaliser agreed
    saved = ckpt.load_checkpoint(tmp_path / "ddp")["objective"]["contrast.bank.memory"]
    assert torch.equal(saved, r0["bank"])  # rank 0's checkpoint holds the bank every rank holds
    assert (tmp_path / "ddp" / "summary.json").exists()


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_dead_rank_makes_the_other_fail_clearly_not_hang(tmp_path, tiny_mlp_registered):
    config = base_config(**{"contrast.sampler": "uniform", "contrast.negatives": 32})
    started = time.monotonic()
    codes = launch(config, tmp_path / "ddp", tmp_path, die_at=2, timeout=120)
    # rank 0 exits non-zero; gloo may abort it while tearing down after the error was reported
    assert codes[1] == 3 and codes[0] != 0
    message = (tmp_path / "error0.txt").read_text()
    assert message.startswith("DistributedError: rank 0 of 2 stopped in epoch 0")
    assert "--resume" in message
    assert time.monotonic() - started < 120
