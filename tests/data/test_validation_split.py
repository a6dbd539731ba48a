"""The validation split carved from training data: stratified, seeded, disjoint, and the test split unread."""

from __future__ import annotations

import pytest
import torch

from scns.data import ImageSet, carve_validation


def _set(counts: list[int]) -> ImageSet:
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
    n = labels.numel()
    # pixel 0 carries the sample's position so the halves can be traced back
    images = torch.zeros(n, 4, 4, 3, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) % 256
    images[:, 0, 0, 1] = torch.arange(n) // 256
    return ImageSet(images, labels, [f"c{c}" for c in range(len(counts))], "toy", "train")


def _ids(data: ImageSet) -> list[int]:
    return (data.images[:, 0, 0, 0].long() + 256 * data.images[:, 0, 0, 1].long()).tolist()


def test_split_is_stratified_disjoint_and_complete() -> None:
    data = _set([30, 20, 50])
    rest, val = carve_validation(data, 10, seed=3)
    assert val.split == "val" and rest.split == "train"
    # 10 // 3 = 3 per class, one class (chosen by the seed) gives one more
    per_class = torch.bincount(val.labels, minlength=3)
    assert sorted(per_class.tolist()) == [3, 3, 4]
    ids_rest, ids_val = _ids(rest), _ids(val)
    assert set(ids_rest).isdisjoint(ids_val)
    assert sorted(ids_rest + ids_val) == list(range(100))
    assert ids_rest == sorted(ids_rest) and ids_val == sorted(ids_val)  # training order kept
    # labels travel with their images
    assert torch.equal(data.labels[torch.tensor(ids_val)], val.labels)


def test_split_depends_on_the_seed_only() -> None:
    data = _set([40, 40])
    a = _ids(carve_validation(data, 8, seed=0)[1])
    b = _ids(carve_validation(data, 8, seed=0)[1])
    c = _ids(carve_validation(data, 8, seed=1)[1])
    assert a == b and a != c


def test_every_image_equally_likely_to_be_held_out() -> None:
    # 5 of 20 per class: each image is held out with probability 1/4; over 400 seeds the count of
    # each image is Binomial(400, 0.25) (mean 100, sd 8.7); all 40 within 4.5 sd
    data = _set([20, 20])
    counts = torch.zeros(40)
    for seed in range(400):
        counts[torch.tensor(_ids(carve_validation(data, 10, seed=seed)[1]))] += 1
    assert (counts - 100).abs().max() < 4.5 * 8.66


def test_bad_sizes_are_clear_errors() -> None:
    data = _set([5, 5])
    with pytest.raises(ValueError, match="val_size=1 must be in"):
        carve_validation(data, 1)
    with pytest.raises(ValueError, match="val_size=9 must be in"):
        carve_validation(data, 9)
    with pytest.raises(ValueError, match="as many validation images"):
        carve_validation(_set([2, 10]), 6)
