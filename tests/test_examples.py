"""The examples/ scripts, run on generated data: a plain PyTorch loop, a Lightning module and the
pytorch-metric-learning adapter."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import scns

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# cat ~ dog, automobile ~ truck: each class's top-1 similar class is its pair
SIMILARITY = torch.tensor(
    [[0.0, 0.9, 0.1, 0.1], [0.9, 0.0, 0.1, 0.1], [0.1, 0.1, 0.0, 0.9], [0.1, 0.1, 0.9, 0.0]]
)


@pytest.fixture(scope="module")
def examples():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def test_plain_loop_learns_and_resumes_exactly(examples) -> None:
    plain = examples("plain_pytorch")
    x, y, names = plain.generated_data(per_class=2, size=16)
    options = {"similarity": SIMILARITY, "batch_size": 4, "negatives": 32}
    straight = plain.train(x, y, names, epochs=2, **options)
    first = plain.train(x, y, names, epochs=1, **options)
    resumed = plain.train(x, y, names, epochs=2, resume=first, **options)
    # the checkpoint carries the bank and the sampler: the resumed epoch is the straight run's second
    assert resumed["losses"] == straight["losses"][len(first["losses"]) :]
    for key, value in straight["scns"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, resumed["scns"][key]), key
    assert all(torch.equal(v, resumed["model"][k]) for k, v in straight["model"].items())
    assert all(math.isfinite(v) for v in straight["losses"])
    # one bank update per optimizer step: 2 epochs x 2 batches of 4
    assert int(straight["scns"]["contrast.bank.num_updates"]) == 4


def test_plain_loop_negatives_come_from_the_similar_class(examples) -> None:
    plain = examples("plain_pytorch")
    x, y, names = plain.generated_data(per_class=4, size=16)
    term = plain.make_term(y, names, SIMILARITY, negatives=64)
    idx = torch.arange(len(y))
    _, neg = term.draw(y[idx], idx, torch.Generator().manual_seed(0))
    assert torch.equal(y[neg], (y ^ 1).unsqueeze(1).expand_as(neg))  # 0<->1, 2<->3


def test_metric_learning_ntxent_equals_the_scns_infonce_term(examples) -> None:
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.losses import NTXentLoss

    ml = examples("metric_learning")
    torch.manual_seed(0)
    labels = torch.arange(40) % 4
    term = scns.ContrastiveNegatives(
        labels, dim=8, similarity=SIMILARITY, top_k=1, negatives=16, temperature=0.2
    )
    z = torch.randn(6, 8, requires_grad=True)
    idx = torch.tensor([0, 5, 10, 15, 21, 39])
    y = labels[idx]
    pairs = ml.SCNSPairs(term)
    indices_tuple, ref_emb, ref_labels = pairs(z, y, idx, torch.Generator().manual_seed(3))
    a1, p, a2, n = indices_tuple
    # PML's pair contract: positives share the anchor's label, negatives do not
    assert len(a1) == len(p) == 6 and len(a2) == len(n) == 6 * 16
    assert torch.equal(y[a1], ref_labels[p]) and bool((y[a2] != ref_labels[n]).all())
    pml = NTXentLoss(temperature=0.2)(z, y, indices_tuple, ref_emb, ref_labels)
    term.eval()  # no pending update: the bank stays as it is
    ours = term(z, y, idx, generator=torch.Generator().manual_seed(3))  # the same draws
    assert pml.item() == pytest.approx(ours.item(), rel=1e-5)
    pml.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    before = term.bank.table.clone()
    pairs.update(idx, z)
    expected = F.normalize(0.5 * before[idx] + 0.5 * F.normalize(z.detach(), dim=1), dim=1)
    torch.testing.assert_close(term.bank.table[idx], expected, rtol=0, atol=1e-6)


@pytest.mark.slow  # importing Lightning alone takes seconds
def test_lightning_module_updates_and_checkpoints_the_bank(examples, tmp_path: Path) -> None:
    L = pytest.importorskip("lightning")
    from torch.utils.data import DataLoader

    example = examples("lightning_module")
    plain = examples("plain_pytorch")
    x, y, names = plain.generated_data(per_class=4, size=16)
    torch.manual_seed(0)
    module = example.SCNSClassifier(y, names, similarity=SIMILARITY, negatives=32)
    initial = module.scns.bank.table.clone()
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(plain.Indexed(x, y), batch_size=4, shuffle=False)
    trainer.fit(module, loader)
    bank = module.scns.bank
    assert int(bank.num_updates) == 3  # one update per optimizer step
    changed = (bank.table != initial).any(1)
    assert changed[:12].all() and not changed[12:].any()  # the 3 batches' rows, nothing else
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    restored = example.SCNSClassifier(y, names, similarity=SIMILARITY, negatives=32)
    restored.load_state_dict(torch.load(tmp_path / "m.ckpt", weights_only=False)["state_dict"])
    assert torch.equal(restored.scns.bank.table, bank.table)
