"""hierarchy: exact 0/1 on CIFAR-100 superclasses, the tie-break formula, group-first order."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scns.similarity import SimilarityError, WordVectors, class_similarity, hierarchy_similarity, top_k
from scns.similarity.shipped import cifar_class_names

# Five CIFAR-100 superclasses written out by hand (the dataset's official coarse labels).
HAND = {
    "fruit_and_vegetables": {"apple", "mushroom", "orange", "pear", "sweet_pepper"},
    "vehicles_1": {"bicycle", "bus", "motorcycle", "pickup_truck", "train"},
    "trees": {"maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"},
    "people": {"baby", "boy", "girl", "man", "woman"},
    "fish": {"aquarium_fish", "flatfish", "ray", "shark", "trout"},
}


def test_cifar100_hierarchy_is_exactly_same_superclass() -> None:
    names = cifar_class_names("cifar100")
    sim = class_similarity("hierarchy", names)
    off = ~torch.eye(100, dtype=torch.bool)
    assert set(sim[off].unique().tolist()) == {0.0, 1.0}
    assert int(sim[off].sum()) == 20 * 5 * 4  # 20 groups of 5: 4 same-group partners each
    for members in HAND.values():
        for a in members:
            partners = {names[j] for j in torch.nonzero(sim[names.index(a)] == 1).flatten().tolist()}
            assert partners == members - {a}


def test_tiebreak_formula_closed_form() -> None:
    groups = ["x", "x", "y", "y"]
    t = torch.tensor(
        [[9.0, 0.2, 0.6, -0.2], [0.2, 9.0, 0.1, 0.4], [0.6, 0.1, 9.0, 0.0], [-0.2, 0.4, 0.0, 9.0]]
    )
    sim = hierarchy_similarity(groups, t)
    lo, hi = -0.2, 0.6  # off-diagonal range of t
    for i in range(4):
        for j in range(4):
            if i != j:
                expected = (groups[i] == groups[j]) + 0.5 * (float(t[i, j]) - lo) / (hi - lo)
                assert sim[i, j] == pytest.approx(expected, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 12), st.integers(1, 4), st.integers(0, 10_000))
def test_group_members_always_rank_before_other_groups(c: int, n_groups: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, n_groups, (c,), generator=g)
    t = torch.randn(c, c, generator=g)
    sim = hierarchy_similarity(groups, (t + t.T) / 2)
    order = top_k(sim.fill_diagonal_(float("-inf")), c - 1)
    for i in range(c):
        same = [bool(groups[j] == groups[i]) for j in order[i].tolist()]
        assert same == sorted(same, reverse=True)  # all same-group classes first


def test_constant_tiebreak_leaves_exact_zero_one() -> None:
    sim = hierarchy_similarity([0, 0, 1], torch.full((3, 3), 0.3))
    assert torch.equal(sim, torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_tiebreak_by_named_source_orders_inside_groups() -> None:
    table = WordVectors(["a", "b", "c", "d"], torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.5, 0.5]]))
    names = ["a", "b", "c", "d"]
    sim = class_similarity(
        "hierarchy:glove",
        names,
        groups=["g", "g", "g", "h"],
        tiebreak_options={"vectors": table},
        use_cache=False,
    )
    assert top_k(sim, 3)[0].tolist() == [1, 2, 3]  # b (same group, close), c (same group, far), d
    assert float(sim[0, 3]) < 1.0 <= float(sim[0, 2])


def test_groups_as_map_and_errors() -> None:
    sim = class_similarity("hierarchy", ["p", "q", "r"], groups={"p": 1, "q": 1, "r": 2})
    assert sim[0, 1] == 1 and sim[0, 2] == 0
    for groups in (torch.tensor([1, 1, 2]), [1, 1, 2], ["a", "a", "b"]):
        assert torch.equal(class_similarity("hierarchy", ["p", "q", "r"], groups=groups), sim)
    with pytest.raises(SimilarityError, match="no coarse group for 1 class"):
        class_similarity("hierarchy", ["apple", "spaceship"])
    with pytest.raises(SimilarityError, match="2 group labels for 3 classes"):
        class_similarity("hierarchy", ["a", "b", "c"], groups=[0, 1])
    with pytest.raises(SimilarityError, match="with itself"):
        class_similarity("hierarchy:hierarchy", ["apple", "pear"])


def test_cifar10_groups_vehicles_and_animals() -> None:
    names = cifar_class_names("cifar10")
    sim = class_similarity("hierarchy", names)
    assert {names[j] for j in torch.nonzero(sim[names.index("truck")] == 1).flatten().tolist()} == {
        "airplane",
        "automobile",
        "ship",
    }


def test_imageset_context_gives_groups_and_wnids() -> None:
    from types import SimpleNamespace

    from scns.similarity import imageset_context

    data = SimpleNamespace(
        classes=["a", "b", "c"],
        labels=torch.tensor([2, 0, 1, 0]),
        coarse_labels=torch.tensor([1, 0, 0, 0]),
        coarse_classes=["g0", "g1"],
        wnids=["n00000001", "n00000002", "n00000003"],
    )
    context = imageset_context(data)
    assert context == {"wnids": ["n00000001", "n00000002", "n00000003"], "groups": ["g0", "g0", "g1"]}
    sim = class_similarity("hierarchy", data.classes, context=context)
    assert sim[0, 1] == 1 and sim[0, 2] == 0
    assert imageset_context(SimpleNamespace(classes=["a"], labels=torch.tensor([0]))) == {}
