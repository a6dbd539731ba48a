"""MemoryBank: what it holds before and after updates, and the two exact scoring formulations."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from scns.dist import free_local_port
from scns.memory import MemoryBank

N, D = 50, 6


def _bank(momentum: float = 0.5, dtype: torch.dtype = torch.float64) -> MemoryBank:
    return MemoryBank(N, D, momentum=momentum, dtype=dtype, generator=torch.Generator().manual_seed(0))


def test_initial_rows_are_unit_norm_and_seeded() -> None:
    bank = _bank()
    assert bank.table.shape == (N, D) and bank.weight is not None
    torch.testing.assert_close(bank.table.norm(dim=1), torch.ones(N, dtype=torch.float64))
    assert torch.equal(bank.table, _bank().table)
    assert set(bank.state_dict()) == {"memory", "num_updates"}


def test_gather_returns_rows() -> None:
    bank = _bank()
    idx = torch.tensor([[3, 3, 0], [49, 1, 2]])
    assert torch.equal(bank.gather(idx), bank.table[idx])


def _loop_update(table: torch.Tensor, index: list[int], z: torch.Tensor, m: float) -> torch.Tensor:
    """Reference: for each distinct id, one momentum step towards the mean of its z."""
    out = table.clone()
    for i in sorted(set(index)):
        rows = [z[j] for j, t in enumerate(index) if t == i]
        mean = sum(rows) / len(rows)
        v = m * table[i] + (1 - m) * mean
        out[i] = v / v.norm()
    return out


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_update_matches_loop_reference_with_duplicates(momentum: float) -> None:
    bank = _bank(momentum)
    before = bank.table.clone()
    index = [4, 7, 4, 0, 49, 7, 4]
    z = torch.randn(len(index), D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    bank.update(torch.tensor(index), z)
    torch.testing.assert_close(bank.table, _loop_update(before, index, z, momentum), rtol=0, atol=1e-12)
    untouched = [i for i in range(N) if i not in index]
    assert torch.equal(bank.table[untouched], before[untouched])
    assert bank.num_updates.item() == 1


def test_update_is_independent_of_batch_order() -> None:
    index = torch.tensor([4, 7, 4, 0, 49, 7, 4])
    z = torch.randn(7, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    perm = torch.tensor([6, 2, 5, 0, 3, 1, 4])
    a, b = _bank(), _bank()
    a.update(index, z)
    b.update(index[perm], z[perm])
    torch.testing.assert_close(a.table, b.table, rtol=0, atol=1e-14)


def test_update_does_not_track_gradients() -> None:
    bank = _bank()
    z = torch.randn(3, D, dtype=torch.float64, requires_grad=True)
    bank.update(torch.tensor([1, 2, 3]), z)
    assert not bank.memory.requires_grad and bank.memory.grad_fn is None


def test_choose_method_by_bytes() -> None:
    bank = MemoryBank(50_000, 128)
    assert bank.choose_method(64, 16_384) == "matmul"  # ~20x fewer bytes than the [B, K, D] gather
    assert bank.choose_method(64, 256) == "gather"


@pytest.mark.parametrize("method", ["gather", "matmul", None])
def test_scores_match_the_definition(method) -> None:
    bank = _bank()
    z = torch.randn(5, D, dtype=torch.float64)
    idx = torch.randint(0, N, (5, 9), generator=torch.Generator().manual_seed(2))
    expected = (z.unsqueeze(1) * bank.table[idx]).sum(2)
    torch.testing.assert_close(bank.scores(z, idx, method=method), expected, rtol=0, atol=1e-12)


def test_scoring_formulations_give_equal_values_and_gradients() -> None:
    bank = _bank()
    idx = torch.randint(0, N, (5, 80), generator=torch.Generator().manual_seed(3))  # duplicates included
    weights = torch.randn(5, 80, dtype=torch.float64)
    results = {}
    for method in ("gather", "matmul"):
        z = torch.randn(
            5, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True
        )
        s = bank.scores(z, idx, method=method)
        (s * weights).sum().backward()
        results[method] = (s.detach(), z.grad)
    torch.testing.assert_close(results["gather"][0], results["matmul"][0], rtol=0, atol=1e-12)
    torch.testing.assert_close(results["gather"][1], results["matmul"][1], rtol=0, atol=1e-12)
    assert bank.memory.grad is None


@pytest.mark.parametrize(("dtype", "bits"), [(torch.bfloat16, 8), (torch.float16, 11)])
def test_low_precision_storage_scores_within_the_rounding_bound(dtype: torch.dtype, bits: int) -> None:
    # Rounding to `bits` significant bits moves each entry by at most 2**-bits relative, so a score
    # of two unit vectors moves by at most 2**-bits (Cauchy-Schwarz). "gather" rounds only the stored
    # rows; "matmul" also rounds the anchor and the product to the bank's dtype: at most 3 roundings.
    full = MemoryBank(N, D, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    half = MemoryBank(N, D, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert half.memory.dtype == dtype
    z = F.normalize(torch.randn(4, D), dim=1)
    idx = torch.randint(0, N, (4, 10))
    unit = 2.0**-bits
    for method, roundings in (("gather", 1), ("matmul", 3)):
        s = half.scores(z, idx, method=method)
        assert s.dtype == torch.float32
        error = (s - full.scores(z, idx, method="gather")).abs().max().item()
        assert error <= roundings * unit + 1e-6, (method, error)
    half.update(torch.tensor([0, 1]), torch.randn(2, D))
    torch.testing.assert_close(half.table[:2].float().norm(dim=1), torch.ones(2), rtol=0, atol=2 * unit)


def test_state_dict_round_trip() -> None:
    bank = _bank(0.3)
    bank.update(torch.tensor([1, 2]), torch.randn(2, D, dtype=torch.float64))
    other = MemoryBank(N, D, momentum=0.3, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    other.load_state_dict(bank.state_dict())
    assert torch.equal(other.table, bank.table) and other.num_updates.item() == 1
    z = torch.randn(3, D, dtype=torch.float64)
    bank.update(torch.tensor([5, 6, 5]), z)
    other.update(torch.tensor([5, 6, 5]), z)
    assert torch.equal(other.table, bank.table)
    with pytest.raises(RuntimeError, match="size mismatch"):
        MemoryBank(N + 1, D, dtype=torch.float64).load_state_dict(bank.state_dict())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0, "dim": 4}, "n >= 1"),
        ({"n": 4, "dim": 4, "momentum": 1.0}, "momentum"),
        ({"n": 4, "dim": 4, "dtype": torch.int64}, "floating"),
    ],
)
def test_constructor_errors(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MemoryBank(**kwargs)


def test_shape_errors() -> None:
    bank = _bank()
    with pytest.raises(ValueError, match=r"z must be \[B, 6\]"):
        bank.scores(torch.randn(2, 5), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"idx must be \[B, K\]"):
        bank.scores(torch.randn(2, D), torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="update expects"):
        bank.update(torch.tensor([1, 2]), torch.randn(3, D))
    with pytest.raises(ValueError, match="scoring method"):
        bank.scores(
            torch.randn(2, D, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.long), method="dense"
        )


def _ddp_worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        bank = _bank()
        index = torch.tensor([[1, 2, 3], [3, 4, 5]])[rank]
        z = torch.randn(2, 3, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)[rank]
        bank.update(index, z)
        results[rank] = bank.table.clone()
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # multi-process (README: what the default run leaves out)
def test_distributed_update_keeps_replicas_identical() -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_ddp_worker, args=(2, free_local_port(), results), nprocs=2, join=True)
        tables = [results[0], results[1]]
    single = _bank()
    z = torch.randn(2, 3, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    single.update(torch.tensor([1, 2, 3, 3, 4, 5]), z.reshape(6, D))
    assert torch.equal(tables[0], tables[1])
    torch.testing.assert_close(tables[0], single.table, rtol=0, atol=1e-14)
