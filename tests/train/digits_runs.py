"""The small digits training setting the tests under tests/train share (seconds per run on a CPU), and
their exact comparison of saved training state.

Imported by those tests as ``from digits_runs import ...`` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

from typing import Any

import torch

from scns.config import Config

#: Two epochs of two steps of resnet8 on the bundled digits, 64 negatives, constant lr. The banks start
#: empty: a prefill (a forward pass over all 1,437 training images, about 60% of a run's CPU time here)
#: is tested in tests/objectives/test_calibration.py and, end to end, by the runs that turn it back on
#: (test_engine.py's resume test, tests/train/test_kill_resume.py). Evaluation runs after the last
#: epoch only: one pass over the 360 test images costs about as much CPU as the epoch's two steps,
#: and the tests that read a per-epoch score set ``train.eval_every`` back to 1.
DIGITS_TINY: dict[str, Any] = {
    "data.dataset": "digits:size=16",
    "data.batch_size": 32,
    "model.name": "resnet8",
    "optim.schedule": "constant",
    "optim.lr": 0.02,
    "train.epochs": 2,
    "train.max_steps_per_epoch": 2,
    "train.eval_every": 2,
    "train.device": "cpu",
    "train.progress": False,
    "contrast.negatives": 64,
    "contrast.bank_prefill": False,
}


def digits_config(**overrides: Any) -> Config:
    """:data:`DIGITS_TINY` with dotted overrides applied."""
    return Config().with_overrides({**DIGITS_TINY, **overrides})


def assert_same_state(a: Any, b: Any, where: str = "objective") -> None:
    """Recursive exact equality of nested dicts of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    else:
        assert a == b, where
