"""Every sampler reports the probability of its draws: log q against loop references and against
its own empirical distribution; mixture schedules; the options contract over the registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from scns.config import ConfigError, ContrastConfig
from scns.sampling import SAMPLERS, ClassTopKSampler, MixtureSampler, SampleTopKSampler, UniformSampler
from scns.sampling.configured import build_configured, sampler_options, validate_sampler_config
from scns.sampling.mixture import ramp_factor

DRAWS = (40, 2500)


def _similarity(c: int, seed: int = 0, ties: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(c, c, generator=g, dtype=torch.float64)
    if ties:  # a coarse similarity with many equal values
        s = (s * 3).floor()
    return (s + s.T) / 2


def _exact_probs(sampler, labels: torch.Tensor, anchor: int) -> np.ndarray:
    """exp(log_prob) of every id [N] for one anchor id."""
    n = labels.numel()
    index = torch.tensor([anchor])
    log_q = sampler.log_prob(index, labels[index], torch.arange(n).unsqueeze(0))[0]
    return log_q.double().exp().numpy()


def _samplers(labels: torch.Tensor) -> dict[str, object]:
    topk = SampleTopKSampler(labels, top_k=30)
    topk.refresh(torch.randn(labels.numel(), 8, generator=torch.Generator().manual_seed(3)))
    return {
        "uniform": UniformSampler(labels),
        "class_topk uniform": ClassTopKSampler(labels, _similarity(7), 3),
        "class_topk softmax ties": ClassTopKSampler(
            labels, _similarity(7, ties=True), 3, weighting="softmax", temperature=0.5
        ),
        "sample_topk": topk,
        "mixture": MixtureSampler(
            [(UniformSampler(labels), 0.3), (ClassTopKSampler(labels, _similarity(7, 1, ties=True), 2), 0.7)]
        ),
    }


@pytest.mark.parametrize(
    "name", ["uniform", "class_topk uniform", "class_topk softmax ties", "sample_topk", "mixture"]
)
def test_log_prob_is_the_empirical_distribution(unequal_labels, assert_fits, name) -> None:
    sampler = _samplers(unequal_labels)[name]
    anchor = 17
    probs = _exact_probs(sampler, unequal_labels, anchor)
    assert abs(probs.sum() - 1) < 1e-6
    assert probs[(unequal_labels == unequal_labels[anchor]).numpy()].sum() == 0  # never the anchor's class
    index = torch.full((DRAWS[0],), anchor)
    ids = sampler.sample(index, unequal_labels[index], DRAWS[1], torch.Generator().manual_seed(5))
    assert_fits(ids, probs / probs.sum())


def test_class_topk_log_prob_matches_a_loop_reference(unequal_labels) -> None:
    sim = _similarity(7, seed=2, ties=True)
    sampler = ClassTopKSampler(unequal_labels, sim, 3, weighting="softmax", temperature=0.7)
    labels = unequal_labels.numpy()
    sizes = np.bincount(labels, minlength=7)
    weights = sampler.weights.numpy()  # tie-aware weights (tested in tests/similarity)
    for anchor_class in (0, 3, 6):
        mass = np.array(
            [
                weights[anchor_class, j] * np.exp(sim[anchor_class, j].item() / 0.7) if sizes[j] else 0.0
                for j in range(7)
            ]
        )
        mass[anchor_class] = 0.0
        ref = np.array([mass[y] / mass.sum() / sizes[y] if sizes[y] else 0.0 for y in labels])
        anchor = int(np.nonzero(labels == anchor_class)[0][0])
        assert np.allclose(_exact_probs(sampler, unequal_labels, anchor), ref, rtol=1e-5, atol=1e-12)


def test_mixture_log_prob_weights_components_by_their_columns(unequal_labels) -> None:
    u, t = UniformSampler(unequal_labels), ClassTopKSampler(unequal_labels, _similarity(7), 2)
    mix = MixtureSampler([(u, 0.25), (t, 0.75)])
    index = torch.tensor([4, 9])
    neg = torch.arange(300).expand(2, -1)
    expected = (0.25 * u.log_prob(index, unequal_labels[index], neg).double().exp()) + (
        0.75 * t.log_prob(index, unequal_labels[index], neg).double().exp()
    )
    # K = 300 columns split 75 / 225: exactly the fractions
    got = mix.log_prob(index, unequal_labels[index], neg).double().exp()
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-12)


def test_ramp_moves_the_semantic_share_from_zero_to_its_fraction(unequal_labels) -> None:
    assert [ramp_factor(e, (2, 6)) for e in range(8)] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1]
    assert ramp_factor(3, ()) == 1.0 and ramp_factor(2, (3, 3)) == 0.0 and ramp_factor(3, (3, 3)) == 1.0
    sim = _similarity(7)
    sim[:, 2] = sim[2, :] = -5.0  # class 2 is empty: nobody's nearest
    mix = MixtureSampler(
        [(UniformSampler(unequal_labels), 0.2), (ClassTopKSampler(unequal_labels, sim, 1), 0.8)],
        ramp=(1, 3),
    )
    index = torch.arange(0, 300, 7)
    y = unequal_labels[index]
    nearest = sim.clone().fill_diagonal_(-9).argmax(1)
    shares = []
    for epoch in range(4):
        mix.set_epoch(epoch)
        neg = mix.sample(index, y, 1000, torch.Generator().manual_seed(epoch))
        shares.append(float((unequal_labels[neg] == nearest[y].unsqueeze(1)).float().mean()))
    # epoch 0-1: all uniform; epoch 2: half of the 0.8; epoch 3: the full 0.8 (plus uniform's hits)
    assert mix.fractions == pytest.approx([0.2, 0.8])
    assert shares[0] < 0.45 and shares[1] < 0.45
    assert shares[0] + 0.25 < shares[2] < shares[3] - 0.25
    with pytest.raises(ValueError, match="uniform component"):
        MixtureSampler([(ClassTopKSampler(unequal_labels, sim, 1), 1.0)], ramp=(0, 2))


# ----------------------------------------------------------------------------- options contract
def _contrast(**kw) -> ContrastConfig:
    return dataclasses.replace(ContrastConfig(), **kw)


@pytest.mark.parametrize("name", sorted(SAMPLERS.names()))
def test_every_registered_sampler_builds_from_its_options_and_honours_the_contract(
    unequal_labels, name
) -> None:
    """Swept over the registry: a new sampler is covered without editing this test."""
    contrast = _contrast(sampler=name, top_k=3, similarity="given", mixture=("uniform:0.5", "class_topk:0.5"))
    validate_sampler_config(contrast, num_classes=7)
    sampler = build_configured(contrast, unequal_labels, _similarity(7))
    feats = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    sampler.refresh(feats)
    index = torch.arange(0, 300, 11)
    y = unequal_labels[index]
    neg = sampler.sample(index, y, 50, torch.Generator().manual_seed(1))
    assert neg.shape == (index.numel(), 50) and neg.dtype == torch.int64
    assert not (unequal_labels[neg] == y.unsqueeze(1)).any()
    log_q = sampler.log_prob(index, y, neg)
    assert log_q.shape == neg.shape and bool(torch.isfinite(log_q).all())  # its own draws are possible
    state = sampler.state_dict()
    again = build_configured(contrast, unequal_labels, _similarity(7))
    again.load_state_dict(state)
    assert torch.equal(again.sample(index, y, 50, torch.Generator().manual_seed(1)), neg)


def test_options_come_from_the_common_keys_then_the_samplers_own(unequal_labels) -> None:
    contrast = _contrast(
        sampler="class_topk", top_k=4, weighting="softmax", sampler_options={"class_topk": {"top_k": 2}}
    )
    options = sampler_options("class_topk", contrast)
    assert (options.top_k, options.weighting) == (2, "softmax")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['topk'\].*top_k"):
        sampler_options("class_topk", _contrast(sampler_options={"class_topk": {"topk": 2}}))
    with pytest.raises(ConfigError, match="skip_nearest must be in"):
        sampler_options("sample_topk", _contrast(sampler_options={"sample_topk": {"skip_nearest": 1.5}}))
    with pytest.raises(ConfigError, match="top_k must be in"):
        validate_sampler_config(_contrast(sampler="class_topk", top_k=7, similarity="glove"), num_classes=7)
    with pytest.raises(ConfigError, match="needs contrast.similarity"):
        validate_sampler_config(_contrast(sampler="mixture", top_k=3), num_classes=7)
    with pytest.raises(ConfigError, match="sum to 1"):
        validate_sampler_config(
            _contrast(
                sampler="mixture", top_k=3, similarity="glove", mixture=("uniform:0.5", "class_topk:0.6")
            ),
            7,
        )
