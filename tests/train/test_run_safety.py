"""A run directory is safe as a database row: one writer, every resume change validated and recorded,
a pinned teacher, files written with the usual mode, clear one-line errors (issue 18)."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
import torch
import yaml
from digits_runs import digits_config

from scns.cli import main
from scns.config import Config, ConfigError
from scns.rundir import RunDir
from scns.runlock import RunBusyError, acquire_run_lock, lock_holder
from scns.train import checkpoint as ckpt
from scns.train.engine import Trainer, default_run_name

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def one_epoch(**overrides) -> Config:
    """One epoch of two steps of resnet8 on digits."""
    return digits_config(**{"train.epochs": 1, **overrides})


def train_cli(tmp_path, *argv: str) -> int:
    return main(["train", "--dataset", "digits", "--device", "cpu", "--no-progress", *argv])


def epochs_logged(run_dir) -> list[int]:
    return [json.loads(line)["epoch"] for line in RunDir(run_dir).metrics.read_text().splitlines()]


# ----------------------------------------------------------------------------- one writer
def test_second_writer_is_refused_naming_the_holder_and_the_lock_goes_with_the_run(tmp_path):
    run_dir = tmp_path / "run"
    first = Trainer.create(one_epoch(), run_dir)
    holder = lock_holder(RunDir(run_dir).lock)
    assert holder["pid"] == os.getpid() and holder["host"]
    with pytest.raises(RunBusyError, match=rf"being written by pid {os.getpid()} on host .* since "):
        Trainer.create(one_epoch(), run_dir)  # a second start on the same name, during "epoch 0"
    with pytest.raises(RunBusyError, match="being written by"):
        Trainer.resume(run_dir)  # nor can anyone resume it meanwhile
    assert not RunDir(run_dir).config.exists()  # the refused writers wrote nothing
    first.fit()
    assert not RunDir(run_dir).lock.exists()  # a clean exit leaves no lock file
    assert epochs_logged(run_dir) == [0]


def test_a_failed_run_releases_its_lock(tmp_path):
    trainer = Trainer.create(
        one_epoch(**{"data.dataset": "cifar10", "data.data_dir": str(tmp_path)}), tmp_path / "r"
    )
    with pytest.raises(Exception):  # noqa: B017 - no CIFAR files there: build fails
        trainer.fit()
    assert lock_holder(RunDir(tmp_path / "r").lock) is None
    Trainer.create(one_epoch(), tmp_path / "r").fit()  # the name is free again


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dead = {"pid": 999_999_999, "host": "elsewhere", "since": 0.0, "command": "scns train"}
    RunDir(run_dir).lock.write_text(json.dumps(dead))  # left by a process killed while holding it
    Trainer.create(one_epoch(), run_dir).fit()
    err = capsys.readouterr().err
    assert "was held by pid 999999999 on host elsewhere" in err and "taking it over" in err
    assert not RunDir(run_dir).lock.exists()


def test_generated_names_never_collide(tmp_path):
    config = one_epoch(**{"train.out_dir": str(tmp_path)})
    trainers = [Trainer.create(config) for _ in range(3)]  # one process, within one second
    dirs = {t.run_dir for t in trainers}
    assert len(dirs) == 3 and all(d.is_dir() for d in dirs)
    assert all(f"-p{os.getpid()}" in d.name for d in dirs)
    assert default_run_name(config).endswith(f"-p{os.getpid()}")
    for trainer in trainers:
        trainer.release()


def test_lock_is_exclusive_even_within_one_process_and_released_files_are_removed(tmp_path):
    lock = acquire_run_lock(tmp_path)
    with pytest.raises(RunBusyError):
        acquire_run_lock(tmp_path)
    lock.release(remove=True)
    assert not RunDir(tmp_path).lock.exists()
    acquire_run_lock(tmp_path).release(remove=True)


# ----------------------------------------------------------------------------- resume rules
@pytest.fixture(scope="module")
def finished_run_template(tmp_path_factory):
    """One finished one-epoch run, trained once for the module; tests get copies."""
    root = tmp_path_factory.mktemp("template")
    run_dir = root / "run"
    Trainer.create(one_epoch(**{"train.out_dir": str(root), "train.name": "run"}), run_dir).fit()
    return run_dir


@pytest.fixture
def finished_run(tmp_path, finished_run_template):
    """A private copy of the finished run (resumes read the run directory they are given)."""
    return shutil.copytree(finished_run_template, tmp_path / "run")


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["--model", "resnet14"], "model.name: 'resnet8' -> 'resnet14'"),
        (["--set", "data.dataset=cifar10"], "data.dataset: 'digits:size=16' -> 'cifar10'"),
        (["--sampler", "uniform"], "contrast.sampler: None -> 'uniform'"),
        (["--seed", "5", "--batch-size", "16"], "data.batch_size: 32 -> 16; train.seed: 0 -> 5"),
        (["--set", "distill.method=kd"], "distill.method"),
    ],
)
def test_resume_refuses_options_that_change_what_is_trained(finished_run, argv, keys, capsys):
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(finished_run), "--epochs", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert f"cannot change on resume: {keys}" in err and "start a new run" in err
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before


def test_resume_refuses_a_preset(finished_run, tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("optim: {lr: 0.1}\n")
    assert main(["train", "--resume", str(finished_run), "--config", str(preset)]) == 2
    assert "--config cannot be combined with --resume" in capsys.readouterr().err


def test_resume_applies_validates_and_records_changeable_options(finished_run, capsys):
    argv = ["train", "--resume", str(finished_run), "--epochs", "2", "--lr", "0.01", "--skip-nonfinite", "3"]
    assert main([*argv[:3], "--epochs", "2", "--lr", "-1"]) == 2  # validated: a bad value is refused
    assert "optim.lr must be > 0" in capsys.readouterr().err
    assert not RunDir(finished_run).history.exists()
    assert main(argv) == 0
    config = Config.load(RunDir(finished_run).config)
    assert (config.train.epochs, config.optim.lr, config.train.skip_nonfinite) == (2, 0.01, 3)
    assert epochs_logged(finished_run) == [0, 1]
    (record,) = [json.loads(line) for line in RunDir(finished_run).history.read_text().splitlines()]
    assert record["event"] == "resume" and record["epochs_done"] == 1 and record["pid"] == os.getpid()
    assert record["changed"] == {
        "optim.lr": {"from": 0.02, "to": 0.01},
        "train.epochs": {"from": 1, "to": 2},
        "train.skip_nonfinite": {"from": 0, "to": 3},
    }
    assert ckpt.load_checkpoint(finished_run)["epoch"] == 2


def test_resuming_a_finished_run_changes_nothing_unless_more_epochs_are_asked(finished_run, capsys):
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(finished_run), "--set", "optim.lr=9.0"]) == 0
    err = capsys.readouterr().err
    assert "is finished (1 of 1 epochs); nothing to do" in err and "(optim.lr) were not applied" in err
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before
    assert main(["train", "--resume", str(finished_run), "--epochs", "0"]) == 2
    assert "train.epochs must be > 0" in capsys.readouterr().err


def test_resume_cannot_cut_below_the_epochs_trained(tmp_path):
    run_dir = tmp_path / "run"
    Trainer.create(digits_config(), run_dir).fit()  # 2 epochs
    with pytest.raises(ConfigError, match="train.epochs=1 is fewer than the 2 epochs"):
        Trainer.resume(run_dir, {"train.epochs": 1})
    assert lock_holder(RunDir(run_dir).lock) is None  # a refused resume lets go of the lock


# ----------------------------------------------------------------------------- teacher pin
@pytest.fixture(scope="module")
def teacher_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "teacher"
    Trainer.create(one_epoch(), path).fit()
    return path


@pytest.fixture
def teacher(tmp_path, teacher_template):
    """A private copy of a trained teacher run (the tests replace and move its checkpoint)."""
    return shutil.copytree(teacher_template, tmp_path / "teacher")


def distill_config(teacher_path, **overrides) -> Config:
    return one_epoch(
        **{
            "train.objective": "distill",
            "distill.method": "kd",
            "distill.teacher": str(teacher_path),
            **overrides,
        }
    )


def test_teacher_is_pinned_by_absolute_path_and_sha256(tmp_path, teacher, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = Trainer.create(distill_config("teacher"), tmp_path / "student")  # relative path
    trainer.fit()
    saved = Config.load(RunDir(tmp_path / "student").config)
    assert saved.distill.teacher == str(tmp_path / "teacher")
    assert saved.distill.teacher_sha256 == ckpt.file_digest(RunDir(teacher).last_checkpoint)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a resume from another working directory finds the teacher
    Trainer.resume(tmp_path / "student", {"train.epochs": 2}).fit()
    assert epochs_logged(tmp_path / "student") == [0, 1]


def test_a_replaced_teacher_is_refused_on_resume_and_a_moved_one_accepted(tmp_path, teacher):
    student = tmp_path / "student"
    Trainer.create(distill_config(teacher), student).fit()
    moved = tmp_path / "moved-teacher"
    shutil.copytree(teacher, moved)
    shutil.rmtree(teacher)
    Trainer.create(one_epoch(**{"train.seed": 9}), teacher).fit()  # another model in its place
    with pytest.raises(ckpt.CheckpointError, match=r"teacher .* has changed: its checkpoint's SHA-256"):
        Trainer.resume(student, {"train.epochs": 2})
    assert main(["distill", "--resume", str(student), "--epochs", "2", "--teacher", str(moved)]) == 0
    saved = Config.load(RunDir(student).config)
    assert saved.distill.teacher == str(moved)
    history = json.loads(RunDir(student).history.read_text())
    assert history["changed"]["distill.teacher"] == {"from": str(teacher), "to": str(moved)}


# ----------------------------------------------------------------------------- files and errors
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_files_get_the_mode_a_plain_write_would(tmp_path, umask):
    old = os.umask(umask)
    try:
        Trainer.create(one_epoch(), tmp_path / "run").fit()
    finally:
        os.umask(old)
    files = RunDir(tmp_path / "run")
    expected = 0o666 & ~umask
    for path in (files.config, files.metrics, files.summary, files.last_checkpoint, files.best_checkpoint):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_out_dir_that_is_a_file_or_read_only_gives_one_line(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert train_cli(tmp_path, "--out-dir", str(blocker), "--name", "r", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create run directory" in err and "Traceback" not in err

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr("pathlib.Path.mkdir", read_only)
    assert train_cli(tmp_path, "--out-dir", str(tmp_path / "ro"), "--name", "r", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Read-only file system; choose a writable --out-dir" in err


def test_torn_metrics_line_is_recovered_on_resume_and_named_by_report(tmp_path, capsys):
    run_dir = tmp_path / "run"
    Trainer.create(one_epoch(), run_dir).fit()
    files = RunDir(run_dir)
    line = files.metrics.read_text().splitlines()[0].replace('"epoch": 0', '"epoch": 1')
    with open(files.metrics, "a") as handle:  # as if killed writing epoch 1's line of a longer run
        handle.write(line[: len(line) // 2])
    assert main(["report", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    assert f"{files.metrics}: the last line is torn" in capsys.readouterr().err
    Trainer.resume(run_dir, {"train.epochs": 2}).fit()
    assert "dropped a torn last line" in capsys.readouterr().err
    assert epochs_logged(run_dir) == [0, 1]


def test_damaged_summary_is_named_by_report(tmp_path, capsys):
    run_dir = tmp_path / "run"
    Trainer.create(one_epoch(), run_dir).fit()
    RunDir(run_dir).summary.write_text('{"final_top1": 9')
    assert main(["report", str(run_dir), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert f"{RunDir(run_dir).summary} is damaged" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "overrides",
    [
        {"contrast.sampler": "sample_topk", "contrast.top_k": 4},
        {
            "contrast.sampler": "mixture",
            "contrast.mixture": ["uniform:0.5", "sample_topk:0.5"],
            "contrast.top_k": 4,
        },
        pytest.param(
            {
                "train.objective": "distill",
                "distill.method": "crd+kd",
                "contrast.sampler": "sample_topk",
                "contrast.top_k": 4,
                "contrast.nce_z": "running",
                "contrast.latent_mixup": 4,
            },
            marks=pytest.mark.slow,
        ),
    ],
    ids=["sample_topk", "mixture", "distill-crd"],
)
def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path, overrides):
    """Every state a checkpoint holds (banks, sampler tables, normalisers, RNG) loads with weights_only."""
    if overrides.get("train.objective") == "distill":
        Trainer.create(one_epoch(), tmp_path / "teacher").fit()
        overrides = {**overrides, "distill.teacher": str(tmp_path / "teacher")}
    run_dir = tmp_path / "run"
    Trainer.create(one_epoch(**overrides), run_dir).fit()
    state = torch.load(RunDir(run_dir).last_checkpoint, weights_only=True)  # raises on anything else
    assert state["epoch"] == 1 and isinstance(state["rng"]["torch"], torch.Tensor)
    assert any(key.endswith("_extra_state") for key in state["objective"])  # the sampler's table
    resumed = Trainer.resume(run_dir, {"train.epochs": 2})
    resumed.fit()  # and restores into the objective
    assert epochs_logged(run_dir) == [0, 1]
    assert (
        yaml.safe_load(RunDir(run_dir).config.read_text())["contrast"]["sampler"]
        == overrides["contrast.sampler"]
    )
