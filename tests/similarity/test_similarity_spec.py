"""Composite specs: parsing, tie-breaking chains, percentile blends, the dynamic ``bank`` term."""

from __future__ import annotations

import itertools

import pytest
import torch

from scns.similarity import (
    SIMILARITY_SOURCES,
    SimilarityError,
    class_similarity,
    register_source,
    topk_weights,
)
from scns.similarity.bank import bank_class_similarity
from scns.similarity.spec import (
    SimilaritySpec,
    lexicographic_similarity,
    percentile_similarity,
    tie_groups,
)

C = 8


def _sym(seed: int, levels: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(C, C, generator=g, dtype=torch.float64)
    if levels is not None:
        x = torch.floor(x * levels) / levels  # few distinct values: many ties
    x = (x + x.T) / 2
    return x.float().fill_diagonal_(float("-inf"))


A = _sym(0, levels=3)  # coarse, tied: a WordNet stand-in
B = _sym(1)  # continuous: a GloVe stand-in


class _Fixed:
    def __init__(self, matrix: torch.Tensor, name: str) -> None:
        self.matrix, self.name = matrix, name

    def fingerprint(self) -> None:
        return None

    def compute(self, names: list[str]) -> torch.Tensor:
        return self.matrix.clone()


@pytest.fixture(autouse=True)
def fixed_sources():
    """Two test sources: 'spec_a' (tied) and 'spec_b' (continuous), removed afterwards."""
    register_source("spec_a")(lambda: _Fixed(A, "spec_a"))
    register_source("spec_b")(lambda: _Fixed(B, "spec_b"))
    yield
    for name in ("spec_a", "spec_b"):
        SIMILARITY_SOURCES._factories.pop(name, None)


NAMES = [f"c{i}" for i in range(C)]
OFF = ~torch.eye(C, dtype=torch.bool)


def test_parse_modes_and_names() -> None:
    s = SimilaritySpec.parse("glove:0.5+bank:0.5")
    assert (s.mode, s.static_names, s.dynamic_names) == ("blend", ("glove",), ("bank",))
    s = SimilaritySpec.parse("wordnet:lch+glove")
    assert (s.mode, s.static_names, s.dynamic_names) == ("lexicographic", ("wordnet:lch", "glove"), ())
    assert [t.weight for t in SimilaritySpec.parse("wordnet:lch:2+glove:1").terms] == [2.0, 1.0]
    s = SimilaritySpec.parse("bank")
    assert (s.mode, s.static_names, s.dynamic_names, s.is_dynamic) == ("single", (), ("bank",), True)
    assert (
        SimilaritySpec.parse("confusion:runs/r1:split=test").terms[0].source == "confusion:runs/r1:split=test"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("glove:0.5+wordnet", "mixes weighted and unweighted"),
        ("glove+glove", "names glove twice"),
        ("bank+wordnet", "must come last"),
        ("glove:-1+wordnet:1", "must be a number > 0"),
        ("glove+", "empty term"),
        ("glvoe+wordnet", "unknown similarity source 'glvoe'"),
        ("bank:x", "takes no ':ARG'"),
    ],
)
def test_parse_errors_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(SimilarityError, match=message):
        SimilaritySpec.parse(spec)


def test_tie_groups_are_dense_and_order_preserving() -> None:
    v = torch.tensor([0.3, 0.1, 0.3 + 1e-9, 0.2, 0.1], dtype=torch.float64)
    assert tie_groups(v).tolist() == [2, 0, 2, 1, 0]
    assert tie_groups(v, rtol=0).tolist() == [2, 0, 3, 1, 0]


def test_percentile_matches_a_midrank_loop() -> None:
    p = percentile_similarity(A)
    vals = [float(A[i, j]) for i in range(C) for j in range(C) if i != j]
    m = len(vals)
    for i, j in itertools.product(range(C), range(C)):
        if i == j:
            assert p[i, j] == 0
            continue
        v = float(A[i, j])
        below = sum(u < v for u in vals)
        equal = sum(u == v for u in vals)
        assert p[i, j].item() == pytest.approx((below + (equal - 1) / 2) / (m - 1), abs=1e-12)
    assert torch.equal(p, p.T)


def test_lexicographic_chain_is_the_brute_force_order() -> None:
    out = class_similarity("spec_a+spec_b", NAMES)
    assert out.dtype == torch.float32 and torch.equal(out, out.T) and torch.isneginf(out.diagonal()).all()
    pairs = [(i, j) for i in range(C) for j in range(C) if i != j]
    for (a, b), (c, d) in itertools.product(pairs, pairs):
        key1 = (float(A[a, b]), float(B[a, b]))
        key2 = (float(A[c, d]), float(B[c, d]))
        assert (out[a, b] < out[c, d]) == (key1 < key2)
        assert (out[a, b] == out[c, d]) == (key1 == key2)
    # the chain's top-k never splits a tie of A by class order: B decides inside A's groups
    w = topk_weights(out, 3)
    assert torch.all((w == 0) | (w == 1))


def test_blend_is_the_weighted_mean_of_percentiles() -> None:
    out = class_similarity("spec_a:3+spec_b:1", NAMES)
    expected = 0.75 * percentile_similarity(A) + 0.25 * percentile_similarity(B)
    torch.testing.assert_close(out[OFF], expected[OFF].float(), rtol=0, atol=1e-6)
    assert torch.equal(out, out.T)
    # invariant to a monotone rescaling of a source
    SIMILARITY_SOURCES._factories.pop("spec_a")
    register_source("spec_a")(lambda: _Fixed(torch.exp(3 * A), "spec_a"))
    torch.testing.assert_close(class_similarity("spec_a:3+spec_b:1", NAMES), out)


def test_static_combine_with_a_dynamic_term_equals_the_all_static_result() -> None:
    """'bank' given B gives what the static source spec_b gives, in every mode."""
    for static_spec, dynamic_spec in [
        ("spec_a:0.5+spec_b:0.5", "spec_a:0.5+bank:0.5"),
        ("spec_a+spec_b", "spec_a+bank"),
        ("spec_b", "bank"),
    ]:
        expected = class_similarity(static_spec, NAMES)
        spec = SimilaritySpec.parse(dynamic_spec)
        static = spec.static_part(NAMES)
        torch.testing.assert_close(spec.combine(static, {"bank": B}), expected, rtol=0, atol=1e-6)
    only_static = SimilaritySpec.parse("spec_a+spec_b")
    static = only_static.static_part(NAMES)
    assert torch.equal(only_static.combine(static, {}), static)


def test_combine_checks_its_inputs() -> None:
    spec = SimilaritySpec.parse("spec_a:0.5+bank:0.5")
    with pytest.raises(SimilarityError, match="needs dynamic matrices"):
        spec.combine(spec.static_part(NAMES), {})
    with pytest.raises(SimilarityError, match="static part is missing"):
        spec.combine(None, {"bank": B})
    with pytest.raises(SimilarityError, match="known only during training"):
        class_similarity("spec_a:0.5+bank:0.5", NAMES)


def test_lexicographic_of_one_matrix_keeps_its_order_and_ties() -> None:
    out = lexicographic_similarity([A])
    for (a, b), (c, d) in itertools.product(zip(*torch.nonzero(OFF).T.tolist(), strict=True), repeat=2):
        assert (out[a, b] < out[c, d]) == (A[a, b] < A[c, d])


def test_bank_class_similarity_matches_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(3)
    n, d, c = 40, 6, 5
    features = torch.randn(n, d, generator=g)
    labels = torch.arange(n) % c
    out = bank_class_similarity(features.to(torch.bfloat16).float(), labels, c)
    feats = features.to(torch.bfloat16).float()
    means = []
    for k in range(c):
        rows = [feats[i] / feats[i].norm() for i in range(n) if int(labels[i]) == k]
        means.append(sum(rows) / len(rows))
    for i in range(c):
        for j in range(c):
            if i == j:
                assert out[i, j] == float("-inf")
            else:
                ref = float(means[i] @ means[j] / (means[i].norm() * means[j].norm()))
                assert out[i, j].item() == pytest.approx(ref, abs=1e-5)
    assert torch.equal(out, out.T)
    with pytest.raises(SimilarityError, match="no samples"):
        bank_class_similarity(features, torch.zeros(n, dtype=torch.long), c)
