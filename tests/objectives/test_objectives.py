"""Objectives: loss parts, frozen teacher, bank updates, and that the sampler decides the negatives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scns.config import Config
from scns.data.batch import Batch
from scns.objectives import DistillObjective, SupervisedObjective, build_objective
from scns.objectives.build import contrast_weight
from scns.similarity import topk_weights

N, C, D_IN = 120, 6, 3 * 8 * 8


class TinyNet(nn.Module):
    """Linear model on 8x8 images returning (logits, features), like every zoo model."""

    def __init__(self, num_classes: int = C, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(D_IN, width), nn.ReLU())
        self.fc = nn.Linear(width, num_classes)
        self.feature_dim = width

    def forward(self, x):
        features = self.body(x)
        return self.fc(features), features


def labels() -> torch.Tensor:
    return torch.arange(N) % C


def batch(seed: int = 0, b: int = 16) -> Batch:
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(N, generator=g)[:b]
    return Batch(torch.randn(b, 3, 8, 8, generator=g), labels()[index], index)


def config(**overrides) -> Config:
    base = {"contrast.negatives": 32, "contrast.embed_dim": 8}
    base.update(overrides)
    return Config().with_overrides(base)


def similarity() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    s = torch.rand(C, C, generator=g)
    return (s + s.T) / 2


def run_step(objective, b: Batch, seed: int = 0):
    objective.on_epoch_start(0, torch.Generator().manual_seed(seed))
    out = objective(b)
    out.loss.backward()
    objective.after_step()
    return out


def test_cross_entropy_only_without_sampler():
    objective = build_objective(config(), TinyNet(), labels())
    out = run_step(objective, batch())
    assert set(out.parts) == {"ce"} and contrast_weight(config()) == 0
    logits, _ = objective.model(batch().x)
    assert torch.allclose(out.loss, nn.functional.cross_entropy(logits, batch().y))


@pytest.mark.parametrize("sampler", ["uniform", "class_topk", "mixture"])
def test_supervised_parts_finite_and_bank_updated(sampler):
    cfg = config(
        **{
            "contrast.sampler": sampler,
            "contrast.similarity": "given",
            "contrast.top_k": 2,
            "contrast.weight": 0.5,
        }
    )
    objective = build_objective(cfg, TinyNet(), labels(), similarity=similarity())
    assert isinstance(objective, SupervisedObjective)
    b = batch()
    bank_before = objective.contrast.bank.table.clone()
    out = run_step(objective, b)
    assert set(out.parts) == {"ce", "contrast"}
    assert all(torch.isfinite(v) for v in out.parts.values())
    assert torch.allclose(out.loss, out.parts["ce"] + out.parts["contrast"])
    bank_after = objective.contrast.bank.table
    changed = (bank_after != bank_before).any(dim=1)
    assert changed[b.index].all() and changed.sum() == len(set(b.index.tolist()))
    assert objective.embed.linear.weight.grad is not None


def test_class_topk_negatives_only_from_top_classes_and_share_logged():
    cfg = config(**{"contrast.sampler": "class_topk", "contrast.similarity": "given", "contrast.top_k": 2})
    objective = build_objective(cfg, TinyNet(), labels(), similarity=similarity())
    seen = {}

    def spy(anchor, pos_idx, neg_idx, generator=None, log_ratio=None, _orig=objective.contrast.forward):
        seen["neg"] = neg_idx
        return _orig(anchor, pos_idx, neg_idx, generator, log_ratio)

    objective.contrast.forward = spy
    b = batch()
    out = run_step(objective, b)
    mask = topk_weights(similarity(), 2) > 0
    neg_classes = labels()[seen["neg"]]
    assert mask[b.y.unsqueeze(1), neg_classes].all()
    assert out.stats["topk_share"] == pytest.approx(1.0)


def test_sampler_choice_changes_the_ids_that_reach_the_loss():
    drawn = {}
    for sampler in ("uniform", "class_topk"):
        cfg = config(**{"contrast.sampler": sampler, "contrast.similarity": "given", "contrast.top_k": 1})
        torch.manual_seed(0)
        objective = build_objective(cfg, TinyNet(), labels(), similarity=similarity())
        calls = []
        original = objective.contrast.forward
        objective.contrast.forward = lambda a, p, n, g=None, r=None, o=original, c=calls: (
            c.append(n),
            o(a, p, n, g, r),
        )[1]
        run_step(objective, batch())
        drawn[sampler] = labels()[calls[0]]
    nearest = similarity().clone().fill_diagonal_(-1).argmax(dim=1)
    b = batch()
    assert (drawn["class_topk"] == nearest[b.y].unsqueeze(1)).all()
    assert (drawn["uniform"] != nearest[b.y].unsqueeze(1)).any()


def test_latent_mixup_appends_pseudo_negatives():
    cfg = config(**{"contrast.sampler": "uniform", "contrast.latent_mixup": 4})
    objective = build_objective(cfg, TinyNet(), labels())
    widths = []
    original = objective.contrast.criterion.forward
    objective.contrast.criterion.forward = lambda pos, neg: (widths.append(neg.shape[1]), original(pos, neg))[
        1
    ]
    run_step(objective, batch())
    assert widths == [32 + 4]


def test_sample_topk_falls_back_to_uniform_until_first_refresh_then_uses_bank_table():
    cfg = config(**{"contrast.sampler": "sample_topk", "contrast.top_k": 5, "contrast.refresh_every": 2})
    objective = build_objective(cfg, TinyNet(), labels())
    assert not objective.negatives.ready
    run_step(objective, batch())
    objective.on_epoch_start(1, torch.Generator().manual_seed(0))
    assert objective.negatives.ready
    table = objective.negatives.sampler.table
    bank = nn.functional.normalize(objective.contrast.bank.table, dim=1)
    sims = bank @ bank.T
    sims[labels().unsqueeze(0) == labels().unsqueeze(1)] = -2
    assert torch.equal(table.long().sort(dim=1).values, sims.topk(5, dim=1).indices.sort(dim=1).values)


def teacher_and_student():
    torch.manual_seed(0)
    return TinyNet(width=24), TinyNet(width=16)


@pytest.mark.parametrize(
    ("method", "parts"),
    [("student", {"ce"}), ("kd", {"ce", "kd"}), ("crd", {"ce", "crd"}), ("crd+kd", {"ce", "kd", "crd"})],
)
def test_distill_methods_parts_and_frozen_teacher(method, parts):
    teacher, student = teacher_and_student()
    cfg = config(**{"train.objective": "distill", "distill.method": method})
    objective = build_objective(cfg, student, labels(), teacher=teacher)
    assert isinstance(objective, DistillObjective)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective.train()
    assert not teacher.training and student.training
    opt = torch.optim.SGD(objective.trainable_parameters(), lr=0.5)
    for step in range(3):
        objective.on_epoch_start(0, torch.Generator().manual_seed(step))
        out = objective(batch(step))
        assert set(out.parts) == parts and all(torch.isfinite(v) for v in out.parts.values())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        objective.after_step()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    assert not any(k.startswith("teacher.") for k in objective.state_dict())
    if "crd" in parts:  # each bank holds its own network's embeddings after the update
        b = batch(2)
        z_s = objective.embed_s(student(b.x)[1])
        assert (objective.contrast_s.bank.table[b.index] * z_s).sum(1).mean() > 0.5


def test_kd_weights_follow_crd_benchmark_defaults():
    teacher, student = teacher_and_student()
    objective = build_objective(
        config(**{"train.objective": "distill", "distill.method": "kd"}), student, labels(), teacher=teacher
    )
    assert (objective.ce_weight, objective.kd_weight, objective.crd_weight) == (0.1, 0.9, 0.0)
    objective = build_objective(
        config(**{"train.objective": "distill", "distill.method": "crd"}), student, labels(), teacher=teacher
    )
    assert (objective.ce_weight, objective.kd_weight, objective.crd_weight) == (1.0, 0.0, 0.8)


def test_crd_loss_is_nce_in_both_directions_with_shared_negatives():
    teacher, student = teacher_and_student()
    cfg = config(**{"train.objective": "distill", "distill.method": "crd", "contrast.sampler": "uniform"})
    objective = build_objective(cfg, student, labels(), teacher=teacher)
    negs = []
    for side in (objective.contrast_s, objective.contrast_t):
        original = side.forward
        side.forward = lambda a, p, n, g=None, r=None, o=original: (negs.append(n), o(a, p, n, g, r))[1]
    objective.on_epoch_start(0, torch.Generator().manual_seed(0))
    out = objective(batch())
    assert len(negs) == 2 and torch.equal(negs[0], negs[1])
    b = batch()
    _, fs = student(b.x)
    _, ft = teacher(b.x)
    z_s, z_t = objective.embed_s(fs), objective.embed_t(ft)
    bank_t, bank_s = objective.contrast_t.bank.table, objective.contrast_s.bank.table
    # student anchors against the teacher bank, teacher anchors against the student bank
    ref_s = objective.contrast_t.criterion(
        (z_s * bank_t[b.index]).sum(1), torch.einsum("bd,bkd->bk", z_s, bank_t[negs[0]])
    )
    ref_t = objective.contrast_s.criterion(
        (z_t * bank_s[b.index]).sum(1), torch.einsum("bd,bkd->bk", z_t, bank_s[negs[0]])
    )
    assert torch.allclose(out.parts["crd"], 0.8 * (ref_s + ref_t), rtol=1e-5)


def test_setting_defaults_for_loss_positive_and_weight():
    from scns.losses import InfoNCELoss, NCELoss

    sup = build_objective(config(**{"contrast.sampler": "uniform"}), TinyNet(), labels())
    assert isinstance(sup.contrast.criterion, InfoNCELoss) and sup.positive == "class" and sup.weight == 0.5
    teacher, student = teacher_and_student()
    dist = build_objective(
        config(**{"train.objective": "distill", "distill.method": "crd"}), student, labels(), teacher=teacher
    )
    assert isinstance(dist.contrast_s.criterion, NCELoss) and dist.crd_weight == 0.8
    explicit = build_objective(
        config(
            **{
                "contrast.sampler": "uniform",
                "contrast.loss": "nce",
                "contrast.positive": "self",
                "contrast.weight": 2.0,
            }
        ),
        TinyNet(),
        labels(),
    )
    assert (
        isinstance(explicit.contrast.criterion, NCELoss)
        and explicit.positive == "self"
        and explicit.weight == 2.0
    )


@pytest.mark.parametrize("dtype_name, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_bank_dtype_sets_every_bank_and_sample_topk_ranks_in_float32(dtype_name, dtype):
    cfg = config(
        **{
            "contrast.sampler": "sample_topk",
            "contrast.top_k": 5,
            "contrast.refresh_every": 1,
            "contrast.bank_dtype": dtype_name,
        }
    )
    objective = build_objective(cfg, TinyNet(), labels())
    assert objective.contrast.bank.memory.dtype == dtype
    out = run_step(objective, batch())
    assert torch.isfinite(out.parts["contrast"])
    objective.on_epoch_start(1, torch.Generator().manual_seed(0))
    bank = nn.functional.normalize(objective.contrast.bank.table.float(), dim=1)
    sims = bank @ bank.T
    sims[labels().unsqueeze(0) == labels().unsqueeze(1)] = -2
    expected = sims.topk(5, dim=1).indices.sort(dim=1).values
    assert torch.equal(objective.negatives.sampler.table.long().sort(dim=1).values, expected)
    teacher, student = teacher_and_student()
    distill = build_objective(
        config(**{"train.objective": "distill", "contrast.bank_dtype": dtype_name}),
        student,
        labels(),
        teacher=teacher,
    )
    assert distill.contrast_s.bank.memory.dtype == dtype and distill.contrast_t.bank.memory.dtype == dtype


def test_knn_options_reach_the_sample_topk_sampler():
    cfg = config(
        **{
            "contrast.sampler": "sample_topk",
            "contrast.top_k": 5,
            "contrast.knn_backend": "faiss",
            "contrast.knn_index": "ivf",
            "contrast.knn_nprobe": 3,
        }
    )
    sampler = build_objective(cfg, TinyNet(), labels()).negatives.sampler
    assert (sampler.backend, sampler.faiss_index, sampler.nprobe) == ("faiss", "ivf", 3)


def test_table_build_time_is_reported_once_with_the_next_epoch_stats():
    import time

    from scns.objectives.negatives import NegativeSource
    from scns.sampling import UniformSampler

    class SlowTableSampler(UniformSampler):
        """Uniform draws, with a table build that takes a known 50 ms."""

        def should_refresh(self, epoch: int) -> bool:
            return True

        def refresh(self, features: torch.Tensor) -> None:
            time.sleep(0.05)

    source = NegativeSource(SlowTableSampler(labels()), labels(), k=4)
    source.refresh(torch.zeros(N, 2))  # a build before training (as distillation does from the teacher)
    source.start_epoch()  # does not clear it: it belongs to the first epoch's record
    first = source.epoch_stats()
    assert 0.05 <= first["refresh_time_s"] < 0.5
    source.start_epoch()
    assert source.epoch_stats()["refresh_time_s"] == 0.0  # reported once
    source.start_epoch()
    source.refresh(torch.zeros(N, 2))
    source.refresh(torch.zeros(N, 2))
    assert 0.1 <= source.epoch_stats()["refresh_time_s"] < 1.0


@pytest.mark.parametrize(
    ("overrides", "classes"),
    [
        ({"contrast.sampler": "class_topk", "contrast.top_k": 2}, 2),  # the sampler's own k
        ({"contrast.sampler": "uniform", "contrast.top_k": 3}, 3),
        ({"contrast.sampler": "sample_topk", "contrast.top_k": 50}, None),  # k counts samples: no share
        ({"contrast.sampler": "sample_topk", "contrast.top_k": 50, "contrast.share_top_k": 2}, 2),
        ({"contrast.sampler": "class_topk", "contrast.top_k": 2, "contrast.share_top_k": 4}, 4),
    ],
)
def test_logged_share_counts_the_configured_number_of_similar_classes(overrides, classes):
    cfg = config(**{"contrast.similarity": "given", **overrides})
    objective = build_objective(cfg, TinyNet(), labels(), similarity=similarity())
    mask = objective.negatives.share_mask
    if classes is None:
        assert mask is None
        assert "topk_share" not in run_step(objective, batch()).stats
    else:
        assert torch.equal(mask, topk_weights(similarity(), classes) > 0)
        share = run_step(objective, batch()).stats["topk_share"]
        if overrides["contrast.sampler"] == "sample_topk":  # uniform fallback in the first epoch
            # C = 6: each anchor's 2 similar classes hold 2/5 of the other-class samples
            assert 0.3 < float(share) < 0.5


def test_state_to_device_moves_every_nested_tensor_and_keeps_the_rest() -> None:
    from scns.objectives.negatives import state_to_device

    state = {
        "table": torch.arange(3),
        "parts": [torch.ones(2), ("uniform", torch.zeros(1))],
        "epoch": 4,
        "k": None,
    }
    moved = state_to_device(state, torch.device("meta"))
    assert moved["table"].device.type == "meta" and moved["table"].shape == (3,)
    assert isinstance(moved["parts"], list) and isinstance(moved["parts"][1], tuple)
    assert moved["parts"][0].device.type == "meta" and moved["parts"][1][1].device.type == "meta"
    assert (moved["parts"][1][0], moved["epoch"], moved["k"]) == ("uniform", 4, None)
    assert state["table"].device.type == "cpu"  # the input is left as it was
