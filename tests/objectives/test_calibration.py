"""The calibrated negatives inside the objectives: prefilled banks, tables and adaptive class
similarities rebuilt from the contrasted space, step diagnostics against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_objectives import C, N, TinyNet, batch, config, labels, similarity
from torch import nn

from scns.data.batch import Batch
from scns.objectives import build_objective
from scns.objectives.negatives import ContrastScores, DynamicSimilarity, NegativeSource
from scns.sampling import UniformSampler
from scns.similarity.bank import bank_class_similarity
from scns.similarity.spec import SimilaritySpec
from scns.train.metrics import SampledMeter


class BNNet(TinyNet):
    """TinyNet with a batch norm, to check that a prefill leaves its running statistics alone."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.BatchNorm1d(16), nn.ReLU())


def _all_batches(b: int = 32) -> list[Batch]:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(N, 3, 8, 8, generator=g)
    return [Batch(x[i : i + b], labels()[i : i + b], torch.arange(i, min(i + b, N))) for i in range(0, N, b)]


def test_prefill_sets_every_row_to_its_embedding_and_keeps_batch_norm_state() -> None:
    objective = build_objective(config(**{"contrast.sampler": "uniform"}), BNNet(), labels())
    objective.train()
    bn = objective.model.body[2]
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    assert objective.prefill_banks(_all_batches())
    assert all(torch.equal(v, bn.state_dict()[k]) for k, v in before.items())
    # each row is the unit-norm embedding of its sample, computed in train mode batch by batch
    expected = []
    with torch.no_grad():
        for b in _all_batches():
            _, f = objective.model(b.x)
            expected.append(objective.embed(f))
    assert torch.allclose(objective.contrast.bank.table, torch.cat(expected), atol=1e-6)
    assert objective.training  # the mode is restored


def test_prefill_does_nothing_without_a_contrastive_term() -> None:
    objective = build_objective(config(), TinyNet(), labels())
    assert objective.prefill_banks(_all_batches()) is False


def test_sample_table_is_built_at_epoch_0_only_after_a_prefill() -> None:
    cfg = config(**{"contrast.sampler": "sample_topk", "contrast.top_k": 20, "contrast.refresh_every": 2})
    plain = build_objective(cfg, TinyNet(), labels())
    plain.on_epoch_start(0, torch.Generator().manual_seed(0))
    assert not plain.negatives.ready  # a random bank is not a kNN table: uniform until epoch 1
    prefilled = build_objective(cfg, TinyNet(), labels())
    prefilled.prefill_banks(_all_batches())
    prefilled.on_epoch_start(0, torch.Generator().manual_seed(0))
    assert prefilled.negatives.ready
    table = prefilled.negatives.sampler.table.clone()
    bank = prefilled.contrast.bank.table.float()
    # the table holds each sample's nearest other-class rows of the bank (a loop reference)
    for i in (0, 7, 33):
        sims = bank @ bank[i]
        sims[labels() == labels()[i]] = -math.inf
        assert set(table[i].tolist()) == set(torch.topk(sims, 20).indices.tolist())
    prefilled.on_epoch_start(1, torch.Generator().manual_seed(1))  # refresh_every 2: kept
    assert torch.equal(prefilled.negatives.sampler.table, table)


def test_distillation_tables_come_from_the_teachers_bank_every_refresh() -> None:
    from scns.objectives import DistillObjective

    cfg = config(
        **{
            "train.objective": "distill",
            "distill.method": "crd",
            "contrast.sampler": "sample_topk",
            "contrast.top_k": 20,
            "contrast.refresh_every": 1,
        }
    )
    objective = build_objective(cfg, TinyNet(), labels(), teacher=TinyNet())
    assert isinstance(objective, DistillObjective)
    objective.prefill_banks(_all_batches())
    assert torch.equal(objective.reference_bank(), objective.contrast_t.bank.table)
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    bank = objective.contrast_t.bank.table.float()
    sims = bank @ bank[5]
    sims[labels() == labels()[5]] = -math.inf
    assert set(objective.negatives.sampler.table[5].tolist()) == set(torch.topk(sims, 20).indices.tolist())


def test_bank_similarity_is_recomputed_from_the_bank_each_epoch() -> None:
    spec = SimilaritySpec.parse("bank")
    dynamic = DynamicSimilarity(spec, None, labels(), C)
    cfg = config(**{"contrast.sampler": "class_topk", "contrast.similarity": "bank", "contrast.top_k": 2})
    objective = build_objective(cfg, TinyNet(), labels(), dynamic_similarity=dynamic)
    # before the bank is known every other class ties: uniform over them
    assert torch.allclose(objective.negatives.sampler.probs.sum(1), torch.ones(C, dtype=torch.float64))
    objective.prefill_banks(_all_batches())
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    expected = bank_class_similarity(objective.contrast.bank.table, labels(), C)
    kept = objective.negatives.sampler.weights > 0
    ref = torch.zeros(C, C, dtype=torch.bool)
    ref.scatter_(1, expected.topk(2, dim=1).indices, True)
    assert torch.equal(kept, ref)


def test_step_diagnostics_match_direct_computations() -> None:
    g = torch.Generator().manual_seed(0)
    lab = labels()
    mask = torch.zeros(C, C, dtype=torch.bool)
    mask[:, 1] = True
    source = NegativeSource(UniformSampler(lab), lab, 8, similarity=None)
    source.share_mask = mask
    neg_idx = torch.tensor([[1, 1, 2, 3, 7, 7, 7, 8], [0, 2, 4, 6, 8, 10, 12, 14]])
    y = torch.tensor([0, 1])
    pos = torch.tensor([0.5, 0.2])
    neg = torch.rand(2, 8, generator=g) - 0.5
    pseudo = torch.tensor([[0.9, -math.inf], [0.1, 0.3]])
    stats = source.diagnostics(y, neg_idx, ContrastScores(pos, neg, pseudo, temperature=0.5))
    assert stats["dup_rate"] == pytest.approx(1 - (5 / 8 + 8 / 8) / 2)
    assert stats["gap"] == pytest.approx(float((pos - neg.mean(1)).mean()))
    in_top = (lab[neg_idx] == 1).float()
    assert stats["topk_share"] == pytest.approx(float(in_top.mean()))
    for row in range(2):
        logits = torch.cat([pos[row : row + 1], neg[row], pseudo[row]]) / 0.5
        p = torch.softmax(logits, 0).numpy()
        mass_top = p[1:9][in_top[row].bool().numpy()].sum()
        mass_pseudo = p[9:].sum()
        if row == 0:
            top0, pseudo0 = mass_top, mass_pseudo
    assert stats["topk_mass"] == pytest.approx((top0 + mass_top) / 2, rel=1e-5)
    assert stats["pseudo_mass"] == pytest.approx((pseudo0 + mass_pseudo) / 2, rel=1e-5)
    assert stats["pseudo_above_pos"] == pytest.approx(2 / 4)  # 0.9 > 0.5 and 0.3 > 0.2


def test_diagnostics_are_computed_only_when_asked() -> None:
    objective = build_objective(config(**{"contrast.sampler": "uniform"}), TinyNet(), labels())
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    objective.diagnose = False
    assert objective(batch()).stats == {}
    objective.diagnose = True
    assert {"neg_sim", "pos_sim", "gap", "dup_rate"} <= set(objective(batch()).stats)


def test_sampled_meter_mean_and_standard_error() -> None:
    values = np.array([0.3, 0.5, 0.4, 0.9])
    meter = SampledMeter()
    for v in values:
        meter.update({"gap": torch.tensor(v)})
    out = meter.compute()
    assert out["gap"] == pytest.approx(values.mean())
    assert out["gap_se"] == pytest.approx(values.std(ddof=1) / math.sqrt(4))
    assert out["diag_steps"] == 4


def test_proposal_correction_reaches_the_loss() -> None:
    cfg = config(
        **{
            "contrast.sampler": "class_topk",
            "contrast.similarity": "given",
            "contrast.top_k": 2,
            "contrast.proposal_beta": 1.0,
        }
    )
    objective = build_objective(cfg, TinyNet(), labels(), similarity=similarity())
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    seen = {}
    original = objective.contrast.criterion.forward

    def spy(pos, neg, log_ratio=None):
        seen["ratio"] = log_ratio
        return original(pos, neg, log_ratio)

    objective.contrast.criterion.forward = spy
    b = batch()
    objective(b)
    ratio = seen["ratio"]
    # uniform weighting over the top-2 of 5 other classes, 20 samples each: q = 1/40 per draw
    # against u = 1/100 for every negative, so beta * log(q / u) = log(5 / 2) throughout
    assert ratio is not None and ratio.shape == (b.y.numel(), 32)
    assert torch.allclose(ratio, torch.full_like(ratio, math.log(5 / 2)), atol=1e-5)


def test_a_mixture_without_feature_tables_draws_its_components_from_the_start() -> None:
    """A mixture is only held back (uniform fallback) when one of its parts needs a feature table."""
    cfg = config(
        **{
            "contrast.sampler": "mixture",
            "contrast.similarity": "given",
            "contrast.top_k": 1,
            "contrast.mixture": ["uniform:0.5", "class_topk:0.5"],
        }
    )
    objective = build_objective(cfg, TinyNet(), labels(), similarity=similarity())
    assert objective.negatives.ready
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    b = batch()
    neg = objective.negatives(b.index, b.y, torch.Generator().manual_seed(1))
    nearest = similarity().clone().fill_diagonal_(-1).argmax(1)
    # the class_topk half (16 of 32 columns) comes only from each anchor's nearest class
    assert (labels()[neg[:, 16:]] == nearest[b.y].unsqueeze(1)).all()
    with_table = config(
        **{"contrast.sampler": "mixture", "contrast.mixture": ["uniform:0.5", "sample_topk:0.5"]}
    )
    assert not build_objective(with_table, TinyNet(), labels()).negatives.ready
