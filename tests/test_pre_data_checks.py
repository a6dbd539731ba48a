"""Every check that can run before data loads runs there, with one line and a non-zero exit (issue 18):
the cases a new user hit as raw tracebacks or late failures."""

from __future__ import annotations

import importlib.util

import pytest

from scns.cli import main


@pytest.fixture(autouse=True)
def no_data_loading(refuse_data_loading, monkeypatch):
    # the missing-data-directory case must not find one in the environment (CI sets SCNS_DATA_DIR)
    monkeypatch.delenv("SCNS_DATA_DIR", raising=False)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "cifar10"], "dataset 'cifar10' is read from files: pass --data-dir DIR"),
        (
            ["distill", "--teacher", "t", "--method", "kd", "--kd-temperature", "0"],
            "kd_temperature must be > 0",
        ),
        (
            ["distill", "--teacher", "t", "--method", "kd", "--kd-weight", "-1"],
            "distill.kd_weight must be >= 0",
        ),
        (
            [
                "train",
                "--sampler",
                "mixture",
                "--mixture",
                "uniform:0.3",
                "class_topk:0.3",
                "--similarity",
                "glove",
            ],
            "sum to 1",
        ),
        (
            [
                "train",
                "--sampler",
                "class_topk",
                "--similarity",
                "glove",
                "--top-k",
                "3",
                "--weighting",
                "softmax",
            ]
            + ["--set", "contrast.class_temperature=0"],
            "class_temperature must be finite and > 0",
        ),
        (["train", "--set", "optim.gamma=.nan"], "options must be finite numbers, got optim.gamma=nan"),
        (["train", "--weight-decay", "inf"], "optim.weight_decay=inf"),
    ],
)
def test_rejected_before_data_loads(argv, message, tmp_path, capsys):
    command, *rest = argv
    assert (
        main(
            [command, "--dataset", "digits", "--out-dir", str(tmp_path), *rest]
            if "--dataset" not in rest
            else [command, "--out-dir", str(tmp_path), *rest]
        )
        == 2
    )
    assert message in one_line_error(capsys)
    assert not any(tmp_path.iterdir())  # nothing was created


def test_missing_faiss_is_caught_before_data_loads(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else real(name, *a)
    )
    code = main(["train", "--out-dir", str(tmp_path), "--sampler", "sample_topk", "--knn-backend", "faiss"])
    assert code == 2
    assert "pip install faiss-cpu" in one_line_error(capsys)


def test_evaluate_rejects_a_zero_batch_before_reading_anything(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none"), "--batch-size", "0"]) == 2
    assert "--batch-size must be > 0" in one_line_error(capsys)


def test_grid_filter_that_matches_nothing_fails(tmp_path, capsys):
    assert (
        main(
            [
                "grid",
                "cpu-quick",
                "--out",
                str(tmp_path / "g"),
                "--only",
                "nomatch",
                "--data-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    err = one_line_error(capsys)
    assert "--only 'nomatch' matches none of the" in err and "--list" in err


def test_grid_without_data_dir_fails_before_any_cell(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SCNS_DATA_DIR", raising=False)
    assert main(["grid", "cpu-quick", "--out", str(tmp_path / "g"), "--only", "c10-resnet8-uniform"]) == 2
    assert "is read from files: pass --data-dir" in capsys.readouterr().err
    assert not (tmp_path / "g" / "runs").exists() or not any((tmp_path / "g" / "runs").iterdir())


def test_grid_deadline_that_is_no_time_fails_before_any_cell(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--deadline: 'soon' is neither a clock time"):
        main(["grid", "cpu-quick", "--out", str(tmp_path / "g"), "--deadline", "soon"])
    assert not (tmp_path / "g").exists()
