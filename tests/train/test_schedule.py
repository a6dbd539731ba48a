"""Learning-rate schedules against their closed forms."""

from __future__ import annotations

import math

import pytest

from scns.config import OptimConfig
from scns.train.schedule import lr_at


def test_multistep_matches_crd_schedule():
    optim = OptimConfig(lr=0.05, schedule="multistep", milestones=(150, 180, 210), gamma=0.1)
    spe = 10
    expected = {0: 0.05, 149: 0.05, 150: 0.005, 179: 0.005, 180: 5e-4, 210: 5e-5, 239: 5e-5}
    for epoch, lr in expected.items():
        assert lr_at(epoch * spe + 3, spe, 240, optim) == pytest.approx(lr)


def test_cosine_closed_form_and_endpoints():
    optim = OptimConfig(lr=0.2, schedule="cosine")
    total = 50 * 7
    for step in (0, 17, 175, 349):
        assert lr_at(step, 7, 50, optim) == pytest.approx(0.1 * (1 + math.cos(math.pi * step / total)))


def test_onecycle_peaks_at_pct_start_and_decays():
    optim = OptimConfig(lr=0.4, schedule="onecycle", pct_start=0.25)
    spe, epochs = 4, 10
    lrs = [lr_at(s, spe, epochs, optim) for s in range(spe * epochs)]
    assert lrs[0] == pytest.approx(0.4 / 25)
    assert max(lrs) == pytest.approx(0.4) and lrs.index(max(lrs)) == 10
    assert lrs[-1] == pytest.approx(0.4 / 1e4)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11])) and all(
        a >= b for a, b in zip(lrs[10:], lrs[11:])
    )


def test_warmup_ramps_linearly():
    optim = OptimConfig(lr=0.1, schedule="constant", warmup_epochs=2)
    assert [lr_at(s, 5, 10, optim) for s in (0, 4, 9, 10)] == pytest.approx([0.01, 0.05, 0.1, 0.1])
