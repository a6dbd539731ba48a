"""The evaluation's split of top-1 errors into within- and across-superclass confusions, against a loop."""

from __future__ import annotations

import torch
from torch import nn

from scns.data import BatchTransform, ImageSet
from scns.train.engine import evaluate, fine_to_coarse


class LookupModel(nn.Module):
    """Returns fixed logits per sample: pixel (0, 0) of each image carries its index."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", logits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the transform normalises with mean 0, std 1: channel 0 holds index / 255
        index = torch.round(x[:, 0, 0, 0] * 255).long()
        return self.table[index], torch.zeros(x.shape[0], 2)


def test_errors_split_by_superclass_match_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    n, c = 200, 8
    coarse_of = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    labels = torch.randint(0, c, (n,), generator=g)
    images = torch.zeros(n, 4, 4, 3, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n).to(torch.uint8)
    data = ImageSet(
        images, labels, [f"c{i}" for i in range(c)], "toy", "test", coarse_of[labels], ["a", "b", "c"]
    )
    logits = torch.randn(n, c, generator=g)
    logits[torch.arange(n), labels] += 1.0  # about half right
    transform = BatchTransform((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pad=0, train=False)
    result = evaluate(
        LookupModel(logits),
        images,
        labels,
        transform,
        64,
        torch.device("cpu"),
        superclass=fine_to_coarse(data),
    )

    pred = logits.argmax(1).tolist()
    within = across = correct = 0
    for p, y in zip(pred, labels.tolist()):
        if p == y:
            correct += 1
        elif coarse_of[p] == coarse_of[y]:
            within += 1
        else:
            across += 1
    assert torch.equal(fine_to_coarse(data), coarse_of)
    assert abs(result.top1 - 100 * correct / n) < 1e-9
    assert abs(result.err_within_super - 100 * within / n) < 1e-9
    assert abs(result.err_across_super - 100 * across / n) < 1e-6
    assert set(result.as_dict("test_")) >= {"test_err_within_super", "test_err_across_super"}
    # without superclasses there is no split
    plain = evaluate(LookupModel(logits), images, labels, transform, 64, torch.device("cpu"))
    assert plain.err_within_super is None and "test_err_within_super" not in plain.as_dict()
