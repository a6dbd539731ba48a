"""The public Python API: ``import scns`` and ``scns.ContrastiveNegatives`` in a user's own loop."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

import scns
from scns.config import ConfigError, ContrastConfig
from scns.dist import free_local_port

N, C, D = 120, 6, 8


def _labels() -> torch.Tensor:
    return torch.arange(N) % C


def _similarity() -> torch.Tensor:
    """Classes 2i and 2i+1 are each other's nearest class."""
    sim = torch.full((C, C), 0.1)
    for i in range(0, C, 2):
        sim[i, i + 1] = sim[i + 1, i] = 0.9
    return sim


def _term(**kwargs) -> scns.ContrastiveNegatives:
    torch.manual_seed(0)  # the bank's random initial rows
    options = {"dim": D, "negatives": 16, "similarity": _similarity(), "top_k": 1}
    return scns.ContrastiveNegatives(_labels(), **{**options, **kwargs})


def _batch(seed: int, b: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(N, generator=g)[:b]
    return torch.randn(b, D, generator=g).requires_grad_(), _labels()[idx], idx


def test_top_level_names_and_lazy_import(fresh_python) -> None:
    for name in scns.__all__:
        assert getattr(scns, name) is not None, name
    assert scns.create_model("resnet8", num_classes=10).num_classes == 10
    assert isinstance(scns.MemoryBank(4, 2), torch.nn.Module)
    assert scns.sampling.build_sampler is scns.build_sampler
    code = "import sys, scns; print('torch' in sys.modules)"
    assert fresh_python(code).strip() == "False", "import scns must not import torch (lazy attributes)"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scns.nope  # noqa: B018


def test_loss_matches_a_loop_reference() -> None:
    """positive='self': -log softmax([z.bank[i], z.bank[n_1..n_K]] / T)[0], recomputed with loops."""
    term = _term(positive="self", temperature=0.5)
    z, y, idx = _batch(1)
    loss = term(z, y, idx, generator=torch.Generator().manual_seed(7))
    neg = term.negatives(idx, y, torch.Generator().manual_seed(7))  # the same draws
    bank, zn = term.bank.table.double(), F.normalize(z.detach().double(), dim=1)
    total = 0.0
    for b in range(len(idx)):
        logits = [float(zn[b] @ bank[idx[b]]) / 0.5] + [float(zn[b] @ bank[j]) / 0.5 for j in neg[b]]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert loss.item() == pytest.approx(total / len(idx), rel=1e-5)
    # class_topk with top_k=1: every negative is from the anchor's paired class
    assert torch.equal(_labels()[neg], (y ^ 1).unsqueeze(1).expand_as(neg))
    assert {"neg_sim", "pos_sim"} <= set(term.last_stats)


def test_bank_update_after_the_step_and_automatic() -> None:
    a, b = _term(), _term()
    z, y, idx = _batch(2)
    old = a.bank.table.clone()
    a(z, y, idx).backward()
    a.update()
    expected = F.normalize(0.5 * old[idx].double() + 0.5 * F.normalize(z.detach().double(), dim=1), dim=1)
    torch.testing.assert_close(a.bank.table[idx].double(), expected, rtol=0, atol=1e-6)
    untouched = torch.ones(N, dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(a.bank.table[untouched], old[untouched])
    # without update(), the next call applies the pending update first: same losses afterwards
    b(z, y, idx).backward()
    z2, y2, idx2 = _batch(3)
    la = a(z2, y2, idx2, generator=torch.Generator().manual_seed(1))
    lb = b(z2, y2, idx2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(la, lb) and torch.equal(a.bank.table, b.bank.table)
    # eval mode scores without queueing an update
    a.eval()
    a.update()
    before = a.bank.table.clone()
    a(z, y, idx)
    a.update()
    assert torch.equal(a.bank.table, before)


def test_bf16_autocast_scores_in_float32() -> None:
    """Under CPU bf16 autocast the term casts z up and scores in float32: the loss equals the
    float32 loss of the same (bf16-rounded) embeddings, and gradients reach the model."""
    term = _term(positive="self")
    head = torch.nn.Linear(4, D)
    x, y, idx = torch.randn(10, 4), _labels()[:10], torch.arange(10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = head(x)
        assert z.dtype == torch.bfloat16
        loss = term(z, y, idx, generator=torch.Generator().manual_seed(3))
    assert loss.dtype == torch.float32
    loss.backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()
    reference = _term(positive="self")(z.detach().float(), y, idx, generator=torch.Generator().manual_seed(3))
    assert torch.equal(loss.detach(), reference)


def _train(term: scns.ContrastiveNegatives, seeds: range) -> list[float]:
    losses = []
    for s in seeds:
        z, y, idx = _batch(s)
        losses.append(term(z, y, idx, generator=torch.Generator().manual_seed(100 + s)).item())
    return losses


@pytest.mark.parametrize("sampler", ["class_topk", "sample_topk", "mixture"])
def test_state_dict_round_trip_resumes_exactly(sampler: str) -> None:
    options = {"sampler": sampler, "top_k": 1 if sampler == "class_topk" else 3}
    if sampler == "mixture":
        options["mixture"] = ("uniform:0.5", "class_topk:0.5")
        options["top_k"] = 1
    straight = _term(**options)
    _train(straight, range(3))
    straight.refresh()  # builds sample_topk's table from the bank (no-op for the others)
    state = straight.state_dict()  # taken with the last batch's update still pending
    resumed = _term(**options)
    torch.manual_seed(123)
    resumed.bank.memory.normal_()  # a different bank, overwritten by the load
    resumed.load_state_dict(state)
    assert _train(straight, range(3, 6)) == _train(resumed, range(3, 6))
    straight.update()
    resumed.update()
    assert torch.equal(straight.bank.table, resumed.bank.table)


def test_sample_topk_refresh_at_epoch_start() -> None:
    term = _term(sampler="sample_topk", top_k=2, refresh_every=1)
    term.start_epoch(0)
    assert not term.negatives.ready  # uniform fallback until the bank holds every sample
    _train(term, range(2))
    term.start_epoch(1)
    assert term.negatives.ready
    table = term.negatives.sampler.table
    assert table.shape == (N, 2) and bool((_labels()[table] != _labels().unsqueeze(1)).all())
    assert len(term.epoch_stats()["neg_sim_hist"]) == 40


def test_options_flow_from_contrast_config() -> None:
    term = _term(temperature=0.2, bank_momentum=0.9, weight=2.0, loss="nce")
    assert term.config.temperature == 0.2 and term.bank.momentum == 0.9
    assert term.loss_name == "nce" and term.config.sampler == "class_topk"
    assert _term(similarity=None).config.sampler == "uniform"
    base = ContrastConfig(negatives=32, top_k=1)
    assert scns.ContrastiveNegatives(_labels(), similarity=_similarity(), config=base).num_negatives == 32
    with pytest.raises(TypeError, match="unknown option.*temprature"):
        _term(temprature=0.1)
    with pytest.raises(ConfigError, match="contrast.top_k"):
        _term(top_k="three")
    with pytest.raises(ConfigError, match="class_names"):
        _term(similarity="glove")
    with pytest.raises(ConfigError, match="needs a class similarity"):
        _term(similarity=None, sampler="class_topk")
    with pytest.raises(ValueError, match="num_samples"):
        _term(num_samples=N + 1)
    with pytest.raises(ValueError, match=r"z must be \[B, 8\]"):
        _term()(torch.randn(4, 5), _labels()[:4], torch.arange(4))


def test_module_of_a_model_checkpoints_with_it() -> None:
    """The term as a submodule: its bank and sampler state are in the model's state_dict."""
    model = torch.nn.Module()
    model.scns = _term(sampler="sample_topk", top_k=2)
    model.scns.refresh()
    keys = model.state_dict().keys()
    assert {"scns.contrast.bank.memory", "scns.negatives._extra_state", "scns._extra_state"} <= set(keys)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_moves_to_cuda_with_its_tables() -> None:
    term = _term().cuda()
    z, y, idx = (t.cuda() for t in _batch(4))
    term(z, y, idx).backward()
    term.update()
    assert term.negatives(idx, y, None).device.type == "cuda"


def _ddp_worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        term = _term()
        z, y, idx = _batch(10 + rank, b=6)
        term(z, y, idx).backward()
        term.update()
        results[rank] = term.bank.table.clone()
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned processes: ~5-10 s on a shared 2-core machine
def test_ddp_replicas_hold_the_same_bank() -> None:
    """Two gloo ranks, each with its own batch: both banks equal one bank updated with both batches."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_ddp_worker, args=(2, free_local_port(), results), nprocs=2, join=True)
        tables = [results[0], results[1]]
    single = _term()
    batches = [_batch(10 + r, b=6) for r in range(2)]
    z = torch.cat([F.normalize(b[0].detach(), dim=1) for b in batches])
    single.bank.update(torch.cat([b[2] for b in batches]), z)
    assert torch.equal(tables[0], tables[1])
    torch.testing.assert_close(tables[0], single.bank.table, rtol=0, atol=1e-6)


def test_prefilled_bank_similarity_drives_class_topk_from_epoch_0() -> None:
    """similarity='bank': the class tables follow the bank's class means once it is filled."""
    import torch.nn.functional as F

    from scns.similarity.bank import bank_class_similarity

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 6
    term = scns.ContrastiveNegatives(
        labels, dim=8, sampler="class_topk", similarity="bank", top_k=2, negatives=16
    )
    centers = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    z = F.normalize(centers[labels] + 0.1 * torch.randn(60, 8, generator=g), dim=1)
    term.prefill(torch.arange(60), z)
    assert torch.allclose(term.bank.table, z, atol=1e-6)
    term.start_epoch(0)
    expected = bank_class_similarity(z, labels, 6).topk(2, dim=1).indices
    kept = term.negatives.sampler.weights > 0
    assert all(set(torch.nonzero(kept[c]).flatten().tolist()) == set(expected[c].tolist()) for c in range(6))


def test_a_similarity_matrix_gives_the_top_k_share_like_a_named_source() -> None:
    # the share of negatives from each anchor's top-k classes is logged whether the similarity came
    # as a source name or as a [C, C] tensor; uniform negatives land in the one nearest class (no ties
    # at k = 1 in this matrix) 1 / (C - 1) of the time
    labels = _labels()
    term = scns.ContrastiveNegatives(
        labels, dim=D, similarity=_similarity(), sampler="uniform", top_k=1, negatives=4000
    )
    z, y, idx = _batch(0)
    term(z, y, idx, generator=torch.Generator().manual_seed(0))
    share = float(term.last_stats["topk_share"])
    # 40,000 draws, p = 1/5: binomial standard error 0.002; stated tolerance 5 standard errors
    assert abs(share - 1 / (C - 1)) < 5 * math.sqrt(0.2 * 0.8 / 40_000)
    topk = scns.ContrastiveNegatives(
        labels, dim=D, similarity=_similarity(), sampler="class_topk", top_k=1, negatives=64
    )
    topk(z, y, idx)
    assert float(topk.last_stats["topk_share"]) == 1.0
