"""The fault suite of issue 18: full disks, kill -9 at chosen points, concurrent writers, NaN/inf in
every float option. After each, nothing already written is damaged and a resume finishes the run.

Faults are injected at named points (a monkeypatched call that fails or SIGKILLs its own process),
never by timing luck. The subprocess tests are ``slow``.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
from digits_runs import digits_config

import scns.data.datasets
from scns.cli import main
from scns.config import Config, ConfigError
from scns.rundir import RunDir
from scns.train import checkpoint as ckpt
from scns.train.engine import MACHINE_METRICS
from scns.train.validate import validate_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TESTS_TRAIN = Path(__file__).parent


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def leftovers(run_dir: Path) -> list[Path]:
    """Temporary files and locks a clean stop must not leave behind."""
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp") or p.name == ".lock"]


def epochs_logged(run_dir: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in RunDir(run_dir).metrics.read_text().splitlines()]


# ----------------------------------------------------------------------------- disk full
@pytest.mark.parametrize(
    ("target", "nth"),
    [
        ("last.pt", 2),
        ("metrics.jsonl", 2),
        ("summary.json", 1),
        # written in the same call as last.pt: kept out of the default run for its cost
        pytest.param("best.pt", 1, marks=pytest.mark.slow),
    ],
)
def test_disk_full_gives_one_line_keeps_what_was_written_and_resume_finishes(
    tmp_path, monkeypatch, capsys, target, nth
):
    """ENOSPC injected into the ``nth`` write of ``target`` in a 2-epoch run (a checkpoint or summary
    fails at its fsync; a metrics line after half of it reached the disk)."""
    run_dir = tmp_path / "run"
    calls = {"n": 0}
    real_fsync, real_write = os.fsync, os.write

    def hit(fd: int) -> bool:
        if Path(fd_path(fd)).name.lstrip(".").startswith(target):
            calls["n"] += 1
            return calls["n"] == nth
        return False

    def fsync(fd):
        if hit(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    def write(fd, data):
        if hit(fd):
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(
        os, "write" if target == "metrics.jsonl" else "fsync", write if target == "metrics.jsonl" else fsync
    )
    config = digits_config(**{"train.out_dir": str(tmp_path), "train.name": "run"})
    config.save(tmp_path / "c.yaml")
    code = main(["train", "--config", str(tmp_path / "c.yaml")])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
    assert f"{target}" in err and "files already written are intact" in err
    assert leftovers(run_dir) == []
    # what was written before the fault is whole: the checkpoint loads, every metrics line parses
    if RunDir(run_dir).last_checkpoint.exists():
        assert ckpt.load_checkpoint(run_dir)["epoch"] >= 1
    assert epochs_logged(run_dir) == list(range(len(epochs_logged(run_dir))))
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert epochs_logged(run_dir) == [0, 1]
    assert leftovers(run_dir) == []
    assert json.loads(RunDir(run_dir).summary.read_text())["epochs"] == 2
    assert ckpt.load_checkpoint(RunDir(run_dir).best_checkpoint)["epoch"] in (1, 2)


# ----------------------------------------------------------------------------- NaN / inf
def float_options() -> list[str]:
    """Every float-typed option of the schema (a new one is covered without editing this test)."""
    keys = []
    for section in dataclasses.fields(Config):
        section_type = typing.get_type_hints(Config)[section.name]
        for name, hint in typing.get_type_hints(section_type).items():
            if hint is float or float in typing.get_args(hint):
                keys.append(f"{section.name}.{name}")
    return keys


def test_the_schema_has_float_options():
    assert {"optim.lr", "optim.gamma", "contrast.weight", "distill.kd_temperature"} <= set(float_options())


@pytest.mark.parametrize("key", float_options())
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_option_rejects_nan_and_inf(key, value):
    config = Config().with_overrides({key: value})
    with pytest.raises(ConfigError, match=rf"options must be finite numbers, got {key}="):
        validate_config(config, check_teacher=False)


@pytest.mark.parametrize(
    "argv", [["--contrast-weight", "nan"], ["--contrast-weight", "inf"], ["--momentum", "nan"]]
)
def test_cli_rejects_nonfinite_options_before_any_data_loads(tmp_path, monkeypatch, capsys, argv):
    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded before the configuration was validated")

    monkeypatch.setattr(scns.data.datasets, "load_dataset", refuse)
    monkeypatch.setattr("scns.train.engine.load_dataset", refuse)
    assert (
        main(["train", "--dataset", "digits", "--sampler", "uniform", "--out-dir", str(tmp_path), *argv]) == 2
    )
    err = capsys.readouterr().err
    assert "must be finite numbers" in err and "Lower optim.lr" not in err
    assert not any(tmp_path.iterdir())  # no run directory was made


# ----------------------------------------------------------------------------- kill -9
DRIVER = """
    import os, signal, sys
    from pathlib import Path
    from scns.cli import main
    from scns.objectives import SupervisedObjective

    point = sys.argv[1]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    fd_name = lambda fd: Path(os.readlink(f"/proc/self/fd/{fd}")).name
    calls = {"n": 0}
    if point == "mid-step":  # inside epoch 1's second step, between backward and the bank update
        real = SupervisedObjective.after_step
        def after_step(self):
            calls["n"] += 1
            if calls["n"] == 6:
                die()
            real(self)
        SupervisedObjective.after_step = after_step
    elif point == "mid-checkpoint":  # epoch 1's last.pt temp file half written, never renamed
        real_fsync = os.fsync
        def fsync(fd):
            if fd_name(fd).startswith(".last.pt."):
                calls["n"] += 1
                if calls["n"] == 2:
                    os.ftruncate(fd, os.fstat(fd).st_size // 2)
                    die()
            real_fsync(fd)
        os.fsync = fsync
    elif point == "mid-metrics-line":  # half of epoch 1's metrics line on disk
        real_write = os.write
        def write(fd, data):
            if fd_name(fd) == "metrics.jsonl":
                calls["n"] += 1
                if calls["n"] == 2:
                    real_write(fd, bytes(data)[: len(data) // 2])
                    die()
            return real_write(fd, data)
        os.write = write
    sys.exit(main(sys.argv[2:]))
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS_TRAIN)}


def tiny_deterministic(tmp_path: Path) -> Path:
    config = digits_config(
        **{
            "train.epochs": 3,
            "train.max_steps_per_epoch": 4,
            "train.deterministic": True,
            "optim.schedule": "onecycle",
        }
    )
    path = tmp_path / "config.yaml"
    config.save(path)
    return path


def run_cli(*argv: str, point: str = "none") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER), point, *argv],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


def stripped(run_dir: Path) -> list[dict]:
    lines = RunDir(run_dir).metrics.read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in MACHINE_METRICS} for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid-step", "mid-checkpoint", "mid-metrics-line"])
def test_kill_9_at_a_chosen_point_then_resume_equals_an_uninterrupted_run(tmp_path, point):
    config = tiny_deterministic(tmp_path)
    ref = run_cli("train", "--config", str(config), "--out-dir", str(tmp_path), "--name", "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = run_cli(
        "train", "--config", str(config), "--out-dir", str(tmp_path), "--name", "run", point=point
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_dir = tmp_path / "run"
    assert ckpt.load_checkpoint(run_dir)["epoch"] == 1  # epoch 0 is safe on disk
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    if point == "mid-metrics-line":
        assert "dropped a torn last line" in resumed.stderr
    if point != "mid-step":
        assert "ended without releasing it" in resumed.stderr  # the killed holder's lock taken over
    assert stripped(run_dir) == stripped(tmp_path / "ref")
    assert leftovers(run_dir) == []


# ----------------------------------------------------------------------------- concurrent writers
@pytest.mark.slow
def test_concurrent_starts_on_one_name_and_with_generated_names(tmp_path):
    config = tiny_deterministic(tmp_path)
    same = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scns",
                "train",
                "--config",
                str(config),
                "--out-dir",
                str(tmp_path / "same"),
                "--name",
                "run",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    generated = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scns",
                "train",
                "--config",
                str(config),
                "--out-dir",
                str(tmp_path / "gen"),
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in same]
    assert sorted(code for code, _ in results) == [0, 2, 2], results
    for code, err in results:
        if code == 2:  # refused while the winner ran, or after it finished
            assert "is being written by pid" in err or "already holds a run" in err, err
    assert epochs_logged(tmp_path / "same" / "run") == [0, 1, 2]  # one run's lines, once each
    assert [p.wait(timeout=600) for p in generated] == [0, 0, 0]
    dirs = sorted((tmp_path / "gen").iterdir())
    assert len(dirs) == 3
    assert all(epochs_logged(d) == [0, 1, 2] for d in dirs)


@pytest.mark.slow
def test_concurrent_resumes_one_runs_the_other_is_refused(tmp_path):
    config = tiny_deterministic(tmp_path)
    first = run_cli(
        "train", "--config", str(config), "--out-dir", str(tmp_path), "--name", "run", point="mid-step"
    )
    assert first.returncode == -signal.SIGKILL
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scns", "train", "--resume", str(tmp_path / "run")],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results  # the second either was refused or found it finished
    for code, err in results:
        if code == 2:
            assert "is being written by pid" in err, err
    assert epochs_logged(tmp_path / "run") == [0, 1, 2]
