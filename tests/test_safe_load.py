"""A checkpoint crafted to run code when unpickled is refused without running it, on every path that
reads one: ``scns evaluate``, a distillation teacher, ``--resume``, similarity sources (issue 18)."""

from __future__ import annotations

import pickle

import pytest
import torch

from scns.cli import main
from scns.train import checkpoint as ckpt


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears if the payload runs."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def scns_shaped(marker) -> dict:
    """Everything a scns checkpoint has, plus the payload where a tensor should be."""
    return {
        "format_version": 1,
        "config": {"model": {"name": "resnet8"}, "data": {"dataset": "digits"}},
        "num_classes": 10,
        "classes": [str(i) for i in range(10)],
        "model": {"conv.weight": Payload(marker)},
        "epoch": 1,
    }


@pytest.fixture(params=["torch-zip", "raw-pickle"])
def evil(request, tmp_path):
    """A malicious checkpoint (torch's zip format, or a bare pickle) and the marker it would create."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    if request.param == "torch-zip":
        torch.save(scns_shaped(marker), path)
    else:
        path.write_bytes(pickle.dumps(scns_shaped(marker), protocol=2))
    return path, marker


def test_load_checkpoint_refuses_the_payload_without_running_it(evil):
    path, marker = evil
    with pytest.raises(
        ckpt.CheckpointError,
        match=r"refused to load .* names (builtins|io)\.open.*nothing in the file was run",
    ):
        ckpt.load_checkpoint(path)
    assert not marker.exists()


def test_a_plain_checkpoint_still_loads(tmp_path):
    ckpt.save_checkpoint(
        tmp_path / "ok.pt", {"model": {"w": torch.ones(2)}, "epoch": 3, "best": -float("inf")}
    )
    state = ckpt.load_checkpoint(tmp_path / "ok.pt")
    assert state["epoch"] == 3 and torch.equal(state["model"]["w"], torch.ones(2))


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--checkpoint", "{evil}", "--device", "cpu"],
        ["distill", "--dataset", "digits", "--teacher", "{evil}", "--method", "kd", "--out-dir", "{tmp}"],
        [
            "train",
            "--dataset",
            "digits",
            "--sampler",
            "class_topk",
            "--similarity",
            "prototypes:{evil}",
            "--top-k",
            "2",
            "--out-dir",
            "{tmp}",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--set",
            "train.max_steps_per_epoch=1",
        ],
    ],
    ids=["evaluate", "teacher", "prototypes"],
)
def test_every_command_refuses_the_payload_with_one_line(evil, tmp_path, argv, capsys):
    path, marker = evil
    code = main([a.format(evil=path, tmp=tmp_path / "runs") for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "refused to load" in err and "Traceback" not in err
    assert not marker.exists()


def test_resume_refuses_a_crafted_last_checkpoint(evil, tmp_path, capsys):
    path, marker = evil
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("train: {epochs: 1, device: cpu, progress: false}\n")
    (run_dir / "checkpoints" / "last.pt").write_bytes(path.read_bytes())
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()
