"""Top-k counting and meters against a plain loop."""

from __future__ import annotations

import torch

from scns.train.metrics import MeanMeter, topk_correct


def test_topk_correct_matches_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g)
    labels = torch.randint(0, 7, (50,), generator=g)
    got = topk_correct(logits, labels, (1, 3, 5, 9))
    for j, k in enumerate((1, 3, 5, 9)):
        expected = sum(int(labels[i]) in logits[i].argsort(descending=True)[:k].tolist() for i in range(50))
        assert got[j].item() == expected


def test_mean_meter_weights_by_batch_size():
    meter = MeanMeter()
    meter.update({"a": torch.tensor(1.0)}, 1)
    meter.update({"a": torch.tensor(4.0)}, 3)
    assert meter.compute() == {"a": (1.0 + 12.0) / 4}
