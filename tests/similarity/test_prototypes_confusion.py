"""prototypes and confusion: closed forms, loop references, and the model pass."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scns.similarity import (
    SimilarityError,
    class_prototypes,
    collect_outputs,
    confusion_similarity,
    prototype_similarity,
)


def test_prototypes_closed_form() -> None:
    # class 0 along e1, class 1 along e2, class 2 along e1 + e2 (lengths vary: normalisation removes them)
    features = torch.tensor([[2.0, 0.0], [5.0, 0.0], [0.0, 1.0], [0.0, 7.0], [3.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    sim = prototype_similarity(features, labels, 3)
    r = 1 / math.sqrt(2)
    assert torch.allclose(sim, torch.tensor([[1, 0, r], [0, 1, r], [r, r, 1]]), atol=1e-6)


def test_prototypes_match_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    n, d, c = 300, 16, 7
    features = torch.randn(n, d, generator=g)
    labels = torch.arange(n) % c
    protos = class_prototypes(features, labels, c)
    for k in range(c):
        rows = [features[i] / features[i].norm() for i in range(n) if labels[i] == k]
        assert torch.allclose(protos[k], torch.stack(rows).mean(0), atol=1e-6)
    sim = prototype_similarity(features, labels, c)
    for a in range(c):
        for b in range(c):
            expected = torch.dot(protos[a], protos[b]) / (protos[a].norm() * protos[b].norm())
            assert sim[a, b] == pytest.approx(float(expected), abs=1e-5)


def test_prototypes_reject_empty_class_and_bad_labels() -> None:
    with pytest.raises(SimilarityError, match=r"classes \[2\] have no samples"):
        prototype_similarity(torch.ones(4, 2), torch.tensor([0, 1, 0, 1]), 3)
    with pytest.raises(SimilarityError, match=r"lie in \[0, 2\)"):
        prototype_similarity(torch.ones(2, 2), torch.tensor([0, 2]), 2)
    with pytest.raises(SimilarityError, match="one per feature row"):
        prototype_similarity(torch.ones(3, 2), torch.tensor([0, 1]), 2)


def test_confusion_closed_form() -> None:
    # class 0: 4 samples, 1 taken for class 1; class 1: 2 samples, both taken for class 2; class 2: right.
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 0, 0, 1, 2, 2, 2])
    sim = confusion_similarity(preds, labels, 3)
    expected = torch.tensor([[0.75, 0.125, 0.0], [0.125, 0.0, 0.5], [0.0, 0.5, 1.0]])
    assert torch.allclose(sim, expected)


def test_confusion_matches_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(1)
    c, n = 6, 500
    labels = torch.randint(0, c, (n,), generator=g)
    preds = torch.where(torch.rand(n, generator=g) < 0.6, labels, torch.randint(0, c, (n,), generator=g))
    sim = confusion_similarity(preds, labels, c)
    counts = [[0] * c for _ in range(c)]
    for y, p in zip(labels.tolist(), preds.tolist()):
        counts[y][p] += 1
    for i in range(c):
        for j in range(c):
            rate_ij = counts[i][j] / sum(counts[i])
            rate_ji = counts[j][i] / sum(counts[j])
            assert sim[i, j] == pytest.approx((rate_ij + rate_ji) / 2, abs=1e-6)


def test_confusion_rejects_class_without_samples() -> None:
    with pytest.raises(SimilarityError, match="have no samples"):
        confusion_similarity(torch.tensor([0, 1]), torch.tensor([0, 0]), 2)


class TinyNet(nn.Module):
    """Mean colour -> features (3) -> logits (2); returns (logits, features) like scns models."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)
        self.drop = nn.Dropout(0.5)  # eval mode must switch it off

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.drop(x.mean(dim=(2, 3)))
        return self.head(features), features


def test_collect_outputs_equals_one_big_forward_and_restores_mode() -> None:
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (10, 4, 4, 3), generator=g, dtype=torch.uint8)
    model = TinyNet().train()

    def transform(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2).float() / 255

    logits, features = collect_outputs(model, images, transform, batch_size=3)
    assert model.training
    model.eval()
    with torch.no_grad():
        ref_logits, ref_features = model(transform(images))
    assert torch.allclose(logits, ref_logits) and torch.allclose(features, ref_features)
    with pytest.raises(SimilarityError, match="uint8"):
        collect_outputs(model, images.float(), transform)
