"""DeviceLoader: coverage per epoch, index/image agreement, determinism in (seed, epoch), DDP shards."""

from __future__ import annotations

import pytest
import torch

from scns.data import Batch, get_spec
from scns.data.augment import BatchTransform
from scns.data.loader import DeviceLoader

N = 103  # not a multiple of the batch size or of the world sizes below


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(0, 256, (N, 8, 8, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def labels() -> torch.Tensor:
    return torch.randint(0, 10, (N,), generator=torch.Generator().manual_seed(1))


def _make(images: torch.Tensor, labels: torch.Tensor, **kwargs: object) -> DeviceLoader:
    options: dict[str, object] = {"batch_size": 16, "device": "cpu", "transform": None, "seed": 7}
    options.update(kwargs)
    return DeviceLoader(images, labels, **options)  # type: ignore[arg-type]


def _epoch(loader: DeviceLoader, epoch: int) -> list[Batch]:
    loader.set_epoch(epoch)
    return list(loader)


def test_every_index_once_per_epoch_without_drop_last(images: torch.Tensor, labels: torch.Tensor) -> None:
    loader = _make(images, labels, drop_last=False)
    batches = _epoch(loader, 0)
    assert len(batches) == len(loader) == 7  # ceil(103 / 16)
    seen = torch.cat([b.index for b in batches])
    assert sorted(seen.tolist()) == list(range(N))
    assert [len(b.index) for b in batches] == [16] * 6 + [7]


def test_drop_last_gives_full_batches_of_distinct_samples(images: torch.Tensor, labels: torch.Tensor) -> None:
    loader = _make(images, labels)
    batches = _epoch(loader, 0)
    assert len(batches) == len(loader) == 6
    seen = torch.cat([b.index for b in batches])
    assert all(len(b.index) == 16 for b in batches) and len(set(seen.tolist())) == 96


def test_index_matches_image_and_label(images: torch.Tensor, labels: torch.Tensor) -> None:
    for batch in _make(images, labels):
        assert batch.index.dtype == torch.int64 and batch.y.dtype == torch.int64
        assert torch.equal(batch.x, images[batch.index]) and torch.equal(batch.y, labels[batch.index])


def test_unshuffled_order_is_the_split_order(images: torch.Tensor, labels: torch.Tensor) -> None:
    batches = _epoch(_make(images, labels, shuffle=False, drop_last=False), 3)
    assert torch.cat([b.index for b in batches]).tolist() == list(range(N))


def test_same_seed_and_epoch_give_identical_augmented_batches(
    images: torch.Tensor, labels: torch.Tensor
) -> None:
    transform = BatchTransform.from_spec(get_spec("cifar10"), train=True)
    first = _make(images, labels, transform=transform)
    for e in range(3):  # an uninterrupted run sees epochs 0, 1, 2 ...
        run = _epoch(first, e)
    resumed = _make(images, labels, transform=transform)  # ... a fresh process resumes at epoch 2
    again = _epoch(resumed, 2)
    assert len(run) == len(again)
    for a, b in zip(run, again, strict=True):
        assert torch.equal(a.index, b.index) and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert run[0].x.dtype == torch.float32 and run[0].x.shape == (16, 3, 8, 8)


def test_epochs_and_seeds_differ(images: torch.Tensor, labels: torch.Tensor) -> None:
    loader = _make(images, labels)
    e0, e1 = (torch.cat([b.index for b in _epoch(loader, e)]) for e in (0, 1))
    other_seed = torch.cat([b.index for b in _epoch(_make(images, labels, seed=8), 0)])
    assert not torch.equal(e0, e1) and not torch.equal(e0, other_seed)


def test_augmentation_differs_between_epochs(images: torch.Tensor, labels: torch.Tensor) -> None:
    transform = BatchTransform.from_spec(get_spec("cifar10"), train=True)
    loader = _make(images, labels, transform=transform, shuffle=False)
    a, b = (_epoch(loader, e)[0].x for e in (0, 1))
    assert not torch.equal(a, b)  # same samples, different crops/flips


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_rank_shards_are_disjoint_equal_and_cover(
    images: torch.Tensor, labels: torch.Tensor, world_size: int
) -> None:
    shards = []
    for rank in range(world_size):
        loader = _make(images, labels, rank=rank, world_size=world_size, drop_last=False, batch_size=5)
        assert loader.num_samples == N // world_size
        shards.append(torch.cat([b.index for b in _epoch(loader, 4)]))
    assert len({len(s) for s in shards}) == 1  # same length on every rank
    union = torch.cat(shards)
    assert len(set(union.tolist())) == len(union) == (N // world_size) * world_size  # no sample twice
    full = _make(images, labels, drop_last=False)
    full.set_epoch(4)
    assert sorted(union.tolist()) == sorted(full.epoch_indices()[: len(union)].tolist())  # same permutation


def test_ranks_augment_differently(images: torch.Tensor, labels: torch.Tensor) -> None:
    same = images[:1].expand(N, -1, -1, -1).contiguous()  # every sample the same picture
    transform = BatchTransform.from_spec(get_spec("cifar10"), train=True)
    x0, x1 = (_epoch(_make(same, labels, rank=r, world_size=2, transform=transform), 0)[0].x for r in (0, 1))
    assert not torch.equal(x0, x1)  # ranks draw their own crops and flips


def test_bad_arguments(images: torch.Tensor, labels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="uint8"):
        _make(images.float(), labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        _make(images, labels[:-1])
    with pytest.raises(ValueError, match="rank"):
        _make(images, labels, rank=2, world_size=2)
    with pytest.raises(ValueError, match="no batch of 16"):
        _make(images[:10], labels[:10])
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(images, labels, 0, device="cpu", transform=None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_iteration_makes_no_host_sync(images: torch.Tensor, labels: torch.Tensor) -> None:
    transform = BatchTransform.from_spec(get_spec("cifar10"), train=True)
    loader = DeviceLoader(images, labels, 16, device="cuda", transform=transform, seed=3)
    list(loader)  # warm-up: first-use allocations
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = list(loader)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert batches[0].x.is_cuda and batches[0].index.is_cuda
    cpu = _make(images, labels, transform=transform, seed=3)
    assert len(batches) == len(cpu)
