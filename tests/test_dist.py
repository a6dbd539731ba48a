"""scns.dist: identities in one process; the collectives against their definitions in two (gloo)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from scns import dist


def test_free_local_port_can_be_bound() -> None:
    import socket

    port = dist.free_local_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if the port were taken


def test_single_process_collectives_are_identities() -> None:
    assert not dist.active() and dist.rank() == 0 and dist.world_size() == 1
    t = torch.arange(6.0).view(3, 2)
    assert dist.all_reduce_(t) is t and dist.all_gather_cat(t) is t
    box = {"table": [1, 2]}
    assert dist.broadcast_object(box) is box


def _worker(rank: int, world: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch_dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mine = torch.full((2, 3), float(rank + 1))
        out[rank] = {
            "active": dist.active(),
            "rank": dist.rank(),
            "world": dist.world_size(),
            "sum": dist.all_reduce_(mine.clone()).tolist(),
            "min": dist.all_reduce_(mine.clone(), op="min").tolist(),
            "cat": dist.all_gather_cat(torch.tensor([rank, 10 + rank])).tolist(),
            "obj": dist.broadcast_object({"from": rank}),
        }
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_collectives_match_their_definitions() -> None:
    port = dist.free_local_port()
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, port, out), nprocs=2, join=True)
        results = dict(out)
    for rank in (0, 1):
        r = results[rank]
        assert r["active"] and r["rank"] == rank and r["world"] == 2
        assert r["sum"] == [[3.0] * 3] * 2 and r["min"] == [[1.0] * 3] * 2
        assert r["cat"] == [0, 10, 1, 11]  # rank order
        assert r["obj"] == {"from": 0}
