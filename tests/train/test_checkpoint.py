"""Atomic checkpoint writes and clear errors for unusable checkpoints."""

from __future__ import annotations

import os

import pytest
import torch

from scns.train import checkpoint as ckpt


def test_round_trip_and_run_directory_resolution(tmp_path):
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.save_checkpoint(path, {"w": torch.arange(5), "epoch": 3})
    for where in (path, tmp_path / "run"):
        state = ckpt.load_checkpoint(where)
        assert state["epoch"] == 3 and torch.equal(state["w"], torch.arange(5))


def test_interrupted_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, {"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk vanished mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        ckpt.save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    torn = tmp_path / "torn.pt"
    ckpt.save_checkpoint(torn, {"epoch": 1})
    torn.write_bytes(torn.read_bytes()[:40])
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(torn)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state": 1}, foreign)
    with pytest.raises(ckpt.CheckpointError, match="not a scns checkpoint"):
        ckpt.load_checkpoint(foreign)
    with pytest.raises(ckpt.CheckpointError, match="has no checkpoint"):
        ckpt.load_checkpoint(tmp_path)
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")
