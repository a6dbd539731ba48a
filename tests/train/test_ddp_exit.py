"""Issue 22: a 2-process torchrun job exits promptly after its summary (train, distill, resume), and
the orderly DDP shutdown (``scns.train.distributed.session``) runs on success, error and SIGTERM.

The repeated torchrun jobs go through ``benchmarks/ddp_exit.py`` (the same launcher the measurement
in BENCHMARKS.md uses): a job still running at the hard timeout is killed and fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.distributed as dist
from torch import nn

from scns.dist import free_local_port
from scns.train import distributed as ddp

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ddp_exit.py"
#: Hard limit per job; a healthy job takes 10-30 s on two busy cores.
TIMEOUT_S = 180.0


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ddp_exit_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def printed_summary(tail: list[str]) -> dict:
    """The summary JSON rank 0 printed last (from its opening ``{`` line to the closing ``}``)."""
    end = max(i for i, line in enumerate(tail) if line == "}")
    start = max(i for i in range(end) if tail[i] == "{")
    return json.loads("\n".join(tail[start : end + 1]))


def run_jobs(kind: str, n: int, tmp_path: Path) -> None:
    """``n`` consecutive 2-process jobs of ``kind``: each exits 0, within the timeout, after printing
    the summary that ``summary.json`` holds."""
    b = bench()
    teacher = b.train_teacher(tmp_path, "cpu") if kind == "distill" else None
    fresh: list[Path] = []
    for index in range(n):
        result = b.run_one(index, kind, tmp_path, teacher, fresh, "cpu", TIMEOUT_S)
        assert not result.hang, f"job {index} ({kind}) hung; stacks:\n{result.stacks}"
        assert result.returncode == 0, f"job {index} ({kind}) exited {result.returncode}:\n" + "\n".join(
            result.tail
        )
        assert result.summary_printed
        on_disk = json.loads((Path(result.run_dir) / "summary.json").read_text())
        assert on_disk["epochs"] == (2 if kind == "resume" else 1)
        # the job exits within seconds of its summary (torchrun's own exit takes ~1-5 s on busy cores)
        assert result.exit_after_summary_s < 30.0


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_a_two_process_train_job_exits_after_its_summary(tmp_path):
    """One job in the default run (each costs a torchrun and two torch imports); the slow set runs
    twenty of each kind."""
    b = bench()
    for index in range(1):
        run_dir = tmp_path / f"train-{index}"
        job = b.launch(b.scns_command("train", run_dir, None, "cpu"), TIMEOUT_S)
        assert not job.hang, f"job {index} hung; stacks:\n{job.stacks}"
        assert job.returncode == 0, "\n".join(job.tail)
        # rank 0 printed exactly the summary it wrote (and printed it after every rank had finished)
        assert printed_summary(job.tail) == json.loads((run_dir / "summary.json").read_text())
        assert job.exit_after_summary_s < 30.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["train", "distill", "resume"])
def test_twenty_consecutive_jobs_exit(kind, tmp_path):
    run_jobs(kind, 20, tmp_path)


@pytest.mark.slow
def test_sigterm_stops_every_rank_with_a_signal_exit_code(tmp_path):
    """torchrun forwards SIGTERM to the ranks; they shut down in order and the job ends, non-zero."""
    b = bench()
    run_dir = tmp_path / "long"
    args = b.scns_command("train", run_dir, None, "cpu")
    args[args.index("--epochs") + 1] = "200"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(free_local_port()), "-m", "scns", *args]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (run_dir / "checkpoints" / "last.pt").exists():  # training is under way
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the job did not end within 120 s of SIGTERM")
    assert proc.returncode != 0
    assert "warning: rank" not in output  # no DDP wrapper was left holding the process group
    assert not (run_dir / "summary.json").exists()


# ---------------------------------------------------------------------- in-process (one rank)


@pytest.fixture
def one_rank_group(monkeypatch):
    """A gloo process group of one rank in this process (destroyed afterwards if a test left it)."""
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_local_port())}.items():
        monkeypatch.setenv(key, value)
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_session_releases_in_reverse_order_then_destroys_the_group(one_rank_group):
    order: list[str] = []
    holder = {"ddp": ddp.wrap(nn.Linear(3, 2), torch.device("cpu"))}
    with ddp.session() as run:
        run.release_on_exit(lambda: order.append("first registered"))
        run.release_on_exit(lambda: (order.append("wrapper"), holder.clear()))
        holder["ddp"](torch.ones(4, 3)).sum().backward()  # the Reducer has run a collective
        assert dist.is_initialized()
    assert order == ["wrapper", "first registered"]
    assert not dist.is_initialized()
    assert ddp.live_wrappers() == 0


def test_error_in_the_block_propagates_after_the_shutdown(one_rank_group):
    holder = {"ddp": ddp.wrap(nn.Linear(3, 2), torch.device("cpu"))}
    with pytest.raises(ValueError, match="boom"), ddp.session() as run:
        run.release_on_exit(holder.clear)
        raise ValueError("boom")
    assert not dist.is_initialized() and ddp.live_wrappers() == 0


def test_a_wrapper_still_referenced_is_reported(one_rank_group, capsys):
    kept = ddp.wrap(nn.Linear(3, 2), torch.device("cpu"))
    with ddp.session():
        pass
    assert "1 DistributedDataParallel wrapper(s) still referenced" in capsys.readouterr().err
    assert not dist.is_initialized()
    del kept


def test_sigterm_in_the_block_raises_terminated_after_releasing(one_rank_group):
    released: list[bool] = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ddp.Terminated) as info, ddp.session() as run:
        run.release_on_exit(lambda: released.append(True))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)  # the handler runs at the next bytecode; never reached past it
        pytest.fail("SIGTERM did not interrupt the block")
    assert info.value.code == 128 + signal.SIGTERM
    assert released == [True] and not dist.is_initialized()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_failing_release_fails_a_successful_block(one_rank_group):
    def broken() -> None:
        raise RuntimeError("cannot release")

    with pytest.raises(RuntimeError, match="cannot release"), ddp.session() as run:
        run.release_on_exit(broken)
    assert not dist.is_initialized()


def test_session_without_a_group_only_runs_the_releases():
    released: list[bool] = []
    with ddp.session() as run:
        run.release_on_exit(lambda: released.append(True))
    assert released == [True] and not dist.is_initialized()
