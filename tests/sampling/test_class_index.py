"""ClassIndex: CSR layout against a loop reference, exact draws against their targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scns.sampling.class_index import ClassIndex, alias_table, uniform_below


def test_csr_matches_loop_reference(unequal_labels: torch.Tensor) -> None:
    ci = ClassIndex(unequal_labels, num_classes=8)
    assert ci.num_classes == 8 and ci.n == 300
    assert ci.offsets.shape == (9,) and ci.ids.shape == (300,)
    for c in range(8):
        expected = [i for i, y in enumerate(unequal_labels.tolist()) if y == c]
        assert ci.counts[c].item() == len(expected)
        assert ci.ids[ci.offsets[c] : ci.offsets[c + 1]].tolist() == expected


@pytest.mark.parametrize(
    "labels, match",
    [
        (torch.tensor([0.0, 1.0]), "integer"),
        (torch.tensor([[0, 1]]), "1-D"),
        (torch.tensor([0, -1]), ">= 0"),
        (torch.tensor([], dtype=torch.long), "non-empty"),
    ],
)
def test_bad_labels_are_rejected(labels: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClassIndex(labels)


def test_label_out_of_range_for_num_classes() -> None:
    with pytest.raises(ValueError, match="out of range"):
        ClassIndex(torch.tensor([0, 3]), num_classes=3)


def test_single_class_has_no_negatives() -> None:
    with pytest.raises(ValueError, match="no negatives"):
        ClassIndex(torch.zeros(5, dtype=torch.long), num_classes=3).require_negatives()


def test_uniform_below_is_uniform_and_in_range(assert_fits) -> None:
    n = torch.full((200_000,), 7)
    r = uniform_below(n, generator=torch.Generator().manual_seed(1))
    assert r.dtype == torch.int64 and int(r.min()) >= 0 and int(r.max()) <= 6
    assert_fits(r, np.full(7, 1 / 7))


@pytest.mark.parametrize("anchor_class", [0, 3, 6])
def test_sample_excluding_class_is_exactly_uniform_over_other_classes(
    unequal_labels: torch.Tensor, anchor_class: int, assert_fits
) -> None:
    ci = ClassIndex(unequal_labels)
    anchors = torch.full((50,), anchor_class)
    ids = ci.sample_excluding_class(anchors, 2000, torch.Generator().manual_seed(anchor_class))
    assert ids.shape == (50, 2000) and ids.dtype == torch.int64
    other = (unequal_labels != anchor_class).numpy()
    assert_fits(ids, other / other.sum())


def test_sample_from_classes_is_uniform_within_each_class(unequal_labels: torch.Tensor, assert_fits) -> None:
    ci = ClassIndex(unequal_labels)
    classes = torch.tensor([3, 5]).repeat(40_000)
    ids = ci.sample_from_classes(classes, torch.Generator().manual_seed(2))
    assert torch.equal(unequal_labels[ids], classes)
    sizes = ci.counts.double()
    probs = np.where(np.isin(unequal_labels.numpy(), [3, 5]), 0.5 / sizes[unequal_labels].numpy(), 0.0)
    assert_fits(ids, probs)


def test_sample_from_empty_class_is_an_error(unequal_labels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="empty class"):
        ClassIndex(unequal_labels).sample_from_classes(torch.tensor([1, 2]))


def test_the_goodness_of_fit_check_has_power(unequal_labels: torch.Tensor, assert_fits) -> None:
    """The same draw size as the sampler tests flags a 20% excess on one class (40 of 300 ids)."""
    other = (unequal_labels != 0).double()
    biased = other * torch.where(unequal_labels == 1, 1.2, 1.0)
    ids = torch.multinomial(
        biased / biased.sum(), 100_000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    with pytest.raises(AssertionError, match="p-value"):
        assert_fits(ids, (other / other.sum()).numpy())


def _alias_probabilities(threshold: torch.Tensor, alias: torch.Tensor) -> torch.Tensor:
    """Each item's probability under a uniform column pick, by a loop over the columns."""
    probs = [0.0] * threshold.numel()
    for column, (t, other) in enumerate(zip(threshold.tolist(), alias.tolist(), strict=True)):
        probs[column] += t / threshold.numel()
        probs[other] += (1 - t) / threshold.numel()
    return torch.tensor(probs, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(40))
def test_alias_table_reproduces_the_weights(seed: int) -> None:
    """The closed-form Vose construction against the weights it encodes (a loop over columns):
    random sizes, zeros, equal weights, and weights spanning 20 orders of magnitude."""
    g = torch.Generator().manual_seed(seed)
    size = int(torch.randint(1, 300, (1,), generator=g))
    kind = seed % 4
    if kind == 0:
        weights = torch.rand(size, generator=g, dtype=torch.float64) ** 3
        weights[torch.rand(size, generator=g) < 0.2] = 0.0
    elif kind == 1:
        weights = torch.full((size,), 0.3, dtype=torch.float64)
    elif kind == 2:
        weights = torch.exp(torch.randn(size, generator=g, dtype=torch.float64) * 10)
    else:  # a few blocks of equal weights, as a class_topk candidate list has
        weights = torch.rand(5, generator=g, dtype=torch.float64).repeat_interleave(size // 5 + 1)
    if weights.sum() == 0:
        weights[0] = 1.0
    threshold, alias = alias_table(weights)
    assert threshold.min() >= 0 and threshold.max() <= 1
    assert alias.min() >= 0 and alias.max() < weights.numel()
    target = weights / weights.sum()
    assert torch.allclose(_alias_probabilities(threshold, alias), target, rtol=1e-9, atol=1e-13)
    assert bool((weights[alias[threshold < 1]] > 0).all())  # a column is topped up by a real item
