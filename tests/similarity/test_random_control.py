"""The ``random`` similarity source: a seeded control for the semantic sources."""

from __future__ import annotations

import pytest
import torch

from scns.similarity import SimilarityError, class_similarity, topk_weights

NAMES = [f"class {i}" for i in range(100)]


def test_fixed_by_the_seed_and_the_class_count_alone():
    a = class_similarity("random:seed=3", NAMES, use_cache=False)
    assert torch.equal(a, class_similarity("random:seed=3", [n.upper() for n in NAMES], use_cache=False))
    assert not torch.equal(a, class_similarity("random:seed=4", NAMES, use_cache=False))
    assert torch.equal(
        class_similarity("random", NAMES, use_cache=False),
        class_similarity("random:seed=0", NAMES, use_cache=False),
    )
    assert torch.equal(a, a.T) and torch.isinf(a.diagonal()).all()


def test_entries_are_uniform_and_top_k_classes_spread_evenly():
    from scipy.stats import chisquare, kstest

    sim = class_similarity("random:seed=0", NAMES, use_cache=False)
    upper = sim[torch.triu(torch.ones(100, 100, dtype=torch.bool), diagonal=1)]
    # 4,950 independent U(0, 1) draws: Kolmogorov-Smirnov at the 1% level (fixed seed)
    assert kstest(upper.double().numpy(), "uniform").pvalue > 0.01
    # how often each class is among another's top 10: 1,000 places over 100 classes, mean 10;
    # no class is favoured (chi-square against equal counts at the 1% level)
    counts = (topk_weights(sim, 10) > 0).sum(0).double()
    assert counts.sum() == 1000
    assert chisquare(counts.numpy()).pvalue > 0.01


def test_bad_seeds_are_refused():
    with pytest.raises(SimilarityError, match="integer seed"):
        class_similarity("random:seed=abc", NAMES, use_cache=False)
    with pytest.raises(SimilarityError, match=">= 0"):
        class_similarity("random:seed=-1", NAMES, use_cache=False)


def test_usable_as_a_run_option():
    from scns.config import Config
    from scns.train.validate import validate_config

    validate_config(
        Config().with_overrides(
            {"contrast.sampler": "class_topk", "contrast.similarity": "random:seed=7", "contrast.top_k": 3}
        )
    )
