"""Property tests (hypothesis) and contract checks shared by every sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scns.sampling import (
    SAMPLERS,
    ClassTopKSampler,
    MixtureSampler,
    SampleTopKSampler,
    UniformSampler,
    build_sampler,
    split_counts,
)
from scns.sampling.base import NegativeSampler

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def layouts(draw):
    """Labels [N] over C classes (some possibly empty, at least two non-empty), anchors and k."""
    c = draw(st.integers(2, 6))
    sizes = draw(st.lists(st.integers(0, 12), min_size=c, max_size=c))
    if sum(s > 0 for s in sizes) < 2:
        sizes[0], sizes[1] = max(sizes[0], 1), max(sizes[1], 1)
    labels = torch.tensor(np.repeat(np.arange(c), sizes))
    labels = labels[
        torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
    ]
    b = draw(st.integers(1, 8))
    index = torch.tensor(draw(st.lists(st.integers(0, labels.numel() - 1), min_size=b, max_size=b)))
    k = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    return labels, c, index, k, seed


def _check_contract(out: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, k: int) -> None:
    assert out.shape == (index.numel(), k) and out.dtype == torch.int64 and out.device == labels.device
    assert not out.requires_grad
    assert int(out.min()) >= 0 and int(out.max()) < labels.numel()
    assert bool((labels[out] != labels[index].unsqueeze(1)).all()), "a negative has the anchor's class"


@SETTINGS
@given(layouts())
def test_uniform_properties(layout) -> None:
    labels, _, index, k, seed = layout
    out = UniformSampler(labels).sample(index, labels[index], k, torch.Generator().manual_seed(seed))
    _check_contract(out, labels, index, k)


@SETTINGS
@given(layouts(), st.data())
def test_class_topk_properties(layout, data) -> None:
    labels, c, index, k, seed = layout
    top_k = data.draw(st.integers(1, c - 1))
    sim = torch.rand(c, c, generator=torch.Generator().manual_seed(seed))
    weighting = data.draw(st.sampled_from(["uniform", "softmax"]))
    try:
        max_list_size = data.draw(st.sampled_from([0, 2**23]))  # alias path or candidate lists
        sampler = ClassTopKSampler(
            labels, sim, top_k, weighting=weighting, temperature=0.5, max_list_size=max_list_size
        )
    except ValueError as err:  # documented: a non-empty class whose whole top-k set is empty
        counts = torch.bincount(labels, minlength=c)
        masked = sim.clone().fill_diagonal_(float("-inf"))
        top = masked.topk(top_k, dim=1).indices
        assert "no samples in any of their top" in str(err)
        assert bool(((counts[top].sum(1) == 0) & (counts > 0)).any())
        return
    out = sampler.sample(index, labels[index], k, torch.Generator().manual_seed(seed))
    _check_contract(out, labels, index, k)
    allowed = sampler.topk_classes[labels[index]]  # [B, top_k]
    assert bool((labels[out].unsqueeze(2) == allowed.unsqueeze(1)).any(2).all()), "class outside the top-k"


@SETTINGS
@given(layouts(), st.data())
def test_sample_topk_properties(layout, data) -> None:
    labels, c, index, k, seed = layout
    max_top_k = labels.numel() - int(torch.bincount(labels).max())
    top_k = data.draw(st.integers(1, max_top_k))
    sampler = SampleTopKSampler(labels, top_k, chunk_size=data.draw(st.integers(1, 7)))
    sampler.refresh(torch.randn(labels.numel(), 3, generator=torch.Generator().manual_seed(seed)))
    out = sampler.sample(index, labels[index], k, torch.Generator().manual_seed(seed))
    _check_contract(out, labels, index, k)
    rows = sampler.table[index].long()
    assert bool((out.unsqueeze(2) == rows.unsqueeze(1)).any(2).all()), "a negative outside the anchor's row"


@SETTINGS
@given(st.integers(1, 5000), st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5))
def test_split_counts_is_exact_largest_remainder(k: int, weights: list[float]) -> None:
    fractions = [w / sum(weights) for w in weights]
    counts = split_counts(k, fractions)
    assert sum(counts) == k
    assert all(abs(n - f * k) < 1 for n, f in zip(counts, fractions, strict=True))


@SETTINGS
@given(layouts())
def test_mixture_properties(layout) -> None:
    labels, c, index, k, seed = layout
    sim = torch.rand(c, c, generator=torch.Generator().manual_seed(seed))
    top_k = c - 1  # every other class: never an empty top-k set
    mix = MixtureSampler([(UniformSampler(labels), 0.5), (ClassTopKSampler(labels, sim, top_k), 0.5)])
    out = mix.sample(index, labels[index], k, torch.Generator().manual_seed(seed))
    _check_contract(out, labels, index, k)


def _all_samplers(labels: torch.Tensor) -> dict[str, object]:
    c = int(labels.max()) + 1
    sim = torch.rand(c, c, generator=torch.Generator().manual_seed(0))
    topk = SampleTopKSampler(labels, top_k=20)
    topk.refresh(torch.randn(labels.numel(), 4, generator=torch.Generator().manual_seed(1)))
    return {
        "uniform": UniformSampler(labels),
        "class_topk": ClassTopKSampler(labels, sim, top_k=3, weighting="softmax"),
        "sample_topk": topk,
        "mixture": MixtureSampler([(UniformSampler(labels), 0.25), (topk, 0.75)]),
    }


@pytest.mark.parametrize("name", ["uniform", "class_topk", "sample_topk", "mixture"])
def test_reproducible_from_a_generator_and_protocol(unequal_labels: torch.Tensor, name: str) -> None:
    sampler = _all_samplers(unequal_labels)[name]
    assert isinstance(sampler, NegativeSampler)
    assert isinstance(sampler.describe(), str) and sampler.describe()
    index = torch.arange(0, 300, 13)
    y = unequal_labels[index]
    a = sampler.sample(index, y, 64, torch.Generator().manual_seed(11))
    b = sampler.sample(index, y, 64, torch.Generator().manual_seed(11))
    c = sampler.sample(index, y, 64, torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k_is_rejected(unequal_labels: torch.Tensor, k) -> None:
    with pytest.raises(ValueError, match="positive int"):
        UniformSampler(unequal_labels).sample(torch.tensor([0]), unequal_labels[:1], k)


def test_mismatched_index_and_labels_are_rejected(unequal_labels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"\[B\]"):
        UniformSampler(unequal_labels).sample(torch.tensor([0, 1]), unequal_labels[:1], 4)


def test_k_beyond_the_candidates_draws_with_replacement() -> None:
    labels = torch.tensor([0, 0, 0, 1, 2])  # class-0 anchors have 2 candidates
    out = UniformSampler(labels).sample(
        torch.tensor([0]), torch.tensor([0]), 50, torch.Generator().manual_seed(0)
    )
    assert set(out.flatten().tolist()) == {3, 4}


def test_single_class_labels_are_an_error() -> None:
    labels = torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="no negatives"):
        UniformSampler(labels)
    with pytest.raises(ValueError, match="no negatives"):
        SampleTopKSampler(labels, top_k=1)


def test_class_topk_argument_errors(unequal_labels: torch.Tensor) -> None:
    sim = torch.rand(7, 7)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 6\]"):
        ClassTopKSampler(unequal_labels, sim, top_k=7)
    with pytest.raises(ValueError, match="square"):
        ClassTopKSampler(unequal_labels, torch.rand(7, 6), top_k=2)
    with pytest.raises(ValueError, match="8 classes"):
        ClassTopKSampler(unequal_labels, sim, top_k=2, num_classes=8)
    with pytest.raises(ValueError, match="weighting"):
        ClassTopKSampler(unequal_labels, sim, top_k=2, weighting="linear")
    with pytest.raises(ValueError, match="temperature"):
        ClassTopKSampler(unequal_labels, sim, top_k=2, weighting="softmax", temperature=0)
    bad = sim.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        ClassTopKSampler(unequal_labels, bad, top_k=2)


def test_class_topk_whole_empty_topk_set_is_an_error() -> None:
    labels = torch.tensor([0, 0, 1, 1, 3, 3])  # class 2 is empty
    sim = torch.zeros(4, 4)
    sim[:, 1] = 1.0  # every class's nearest is class 1 ...
    sim[1, 0] = 1.0  # (class 1's nearest is 0)
    sim[0, 2] = 5.0  # ... except class 0, whose nearest (2) is empty
    with pytest.raises(ValueError, match=r"class\(es\) \[0\] have no samples"):
        ClassTopKSampler(labels, sim, top_k=1)


def test_class_topk_legacy_ties_are_broken_by_class_id() -> None:
    labels = torch.arange(12) % 6
    sim = torch.zeros(6, 6)
    sim[0, 4] = 1.0
    sampler = ClassTopKSampler(labels, sim, top_k=3, ties="id")
    assert sampler.topk_classes[0].tolist() == [4, 1, 2]
    assert sampler.topk_classes[5].tolist() == [0, 1, 2]


def test_class_topk_tied_classes_share_the_last_places() -> None:
    # row 0: class 4 strictly first, then 1, 2, 3, 5 tied for the 2 remaining places -> 1/2 each
    labels = torch.arange(12) % 6
    sim = torch.zeros(6, 6)
    sim[0, 4] = 1.0
    sampler = ClassTopKSampler(labels, sim, top_k=3)
    assert sampler.weights[0].tolist() == [0.0, 0.5, 0.5, 0.5, 1.0, 0.5]
    # equal class sizes, uniform weighting: a class is drawn in proportion to its weight
    assert torch.allclose(sampler.probs[0], sampler.weights[0] / 3)
    assert sampler.topk_classes[0].tolist() == [4, 1, 2, 3, 5]


def test_class_topk_sets_do_not_depend_on_class_order() -> None:
    # a hierarchy-like similarity full of ties: permuting the classes permutes the probabilities
    g = torch.Generator().manual_seed(0)
    c = 12
    group = torch.randint(0, 3, (c,), generator=g)
    sim = (group.unsqueeze(0) == group.unsqueeze(1)).double() + 0.5 * torch.randint(0, 2, (c, c), generator=g)
    sim = (sim + sim.T) / 2
    labels = torch.arange(c * 5) % c
    perm = torch.randperm(c, generator=g)
    for weighting in ("uniform", "softmax"):
        a = ClassTopKSampler(labels, sim, top_k=4, weighting=weighting)
        inverse = torch.argsort(perm)
        b = ClassTopKSampler(inverse[labels], sim[perm][:, perm], top_k=4, weighting=weighting)
        assert torch.allclose(b.probs, a.probs[perm][:, perm])


def test_class_topk_accepts_an_object_with_a_matrix(unequal_labels: torch.Tensor) -> None:
    class Sim:
        matrix = torch.rand(7, 7, generator=torch.Generator().manual_seed(0))

    a = ClassTopKSampler(unequal_labels, Sim(), top_k=2)
    assert torch.equal(a.topk_classes, ClassTopKSampler(unequal_labels, Sim.matrix, top_k=2).topk_classes)


def test_mixture_argument_errors(unequal_labels: torch.Tensor) -> None:
    u = UniformSampler(unequal_labels)
    with pytest.raises(ValueError, match="sum to 1"):
        MixtureSampler([(u, 0.5), (u, 0.3)])
    with pytest.raises(ValueError, match="> 0"):
        MixtureSampler([(u, 1.0), (u, 0.0)])
    with pytest.raises(ValueError, match="at least one"):
        MixtureSampler([])


def test_registry_builds_every_sampler(unequal_labels: torch.Tensor) -> None:
    assert {"class_topk", "mixture", "sample_topk", "uniform"} <= set(SAMPLERS.names())
    sim = torch.rand(7, 7)
    assert isinstance(build_sampler("uniform", unequal_labels), UniformSampler)
    assert isinstance(build_sampler("class_topk", unequal_labels, similarity=sim, top_k=2), ClassTopKSampler)
    assert isinstance(build_sampler("sample_topk", unequal_labels, top_k=5), SampleTopKSampler)
    mix = build_sampler(
        "mixture",
        unequal_labels,
        components=[("uniform", 0.5), ("class_topk", 0.5, {"similarity": sim, "top_k": 2})],
    )
    assert isinstance(mix, MixtureSampler) and isinstance(mix.samplers[1], ClassTopKSampler)
    with pytest.raises(KeyError, match=f"Valid choices: {', '.join(SAMPLERS.names())}"):
        build_sampler("uniformm", unequal_labels)


def test_state_dict_round_trips(unequal_labels: torch.Tensor) -> None:
    samplers = _all_samplers(unequal_labels)
    fresh_topk = SampleTopKSampler(unequal_labels, top_k=20)
    fresh = {
        "uniform": UniformSampler(unequal_labels),
        "sample_topk": fresh_topk,
        "mixture": MixtureSampler(
            [(UniformSampler(unequal_labels), 0.25), (SampleTopKSampler(unequal_labels, 20), 0.75)]
        ),
    }
    index = torch.arange(0, 300, 7)
    for name, target in fresh.items():
        state = samplers[name].state_dict()
        target.load_state_dict(state)
        a = samplers[name].sample(index, unequal_labels[index], 32, torch.Generator().manual_seed(3))
        b = target.sample(index, unequal_labels[index], 32, torch.Generator().manual_seed(3))
        assert torch.equal(a, b), name
    assert samplers["uniform"].state_dict() == {}
    assert torch.equal(fresh_topk.table, samplers["sample_topk"].table)
