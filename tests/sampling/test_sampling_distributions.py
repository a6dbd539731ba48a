"""Each sampler's empirical distribution against its exact target (chi-square, fixed seeds).

Reference probabilities are computed with plain NumPy loops, independently of the samplers.
Label layout: CLASS_SIZES in conftest (unequal sizes, one empty class).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scns.sampling import ClassTopKSampler, MixtureSampler, SampleTopKSampler, UniformSampler, split_counts

DRAWS = (40, 2500)  # anchors x k per test: 100,000 draws


def _similarity(c: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(c, c, generator=g, dtype=torch.float64)
    return (s + s.T) / 2


def _reference_class_topk(
    labels: np.ndarray, sim: np.ndarray, anchor: int, top_k: int, weighting: str, t: float
):
    """Per-sample probabilities for an anchor class, by loops over classes."""
    c = sim.shape[0]
    sizes = np.bincount(labels, minlength=c)
    others = sorted((j for j in range(c) if j != anchor), key=lambda j: -sim[anchor, j])[:top_k]
    class_w = {}
    for j in others:
        if sizes[j] == 0:
            continue
        class_w[j] = float(sizes[j]) if weighting == "uniform" else float(np.exp(sim[anchor, j] / t))
    total = sum(class_w.values())
    probs = np.zeros(labels.size)
    for i, y in enumerate(labels):
        if y in class_w:
            probs[i] = class_w[y] / total / sizes[y]
    return probs


def _draw(sampler, labels: torch.Tensor, anchor_class: int, seed: int) -> torch.Tensor:
    anchor_ids = torch.nonzero(labels == anchor_class).flatten()
    index = anchor_ids[torch.arange(DRAWS[0]) % anchor_ids.numel()]
    anchor_labels = torch.full((DRAWS[0],), anchor_class)
    return sampler.sample(index, anchor_labels, DRAWS[1], torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("anchor_class", [0, 3, 5])
def test_uniform_sampler_distribution(unequal_labels: torch.Tensor, anchor_class: int, assert_fits) -> None:
    ids = _draw(UniformSampler(unequal_labels), unequal_labels, anchor_class, seed=anchor_class)
    other = (unequal_labels != anchor_class).numpy()
    assert_fits(ids, other / other.sum())


@pytest.mark.parametrize(
    "weighting, temperature, max_list_size",
    [
        ("uniform", 1.0, 2**23),
        ("uniform", 1.0, 0),
        ("softmax", 0.2, 2**23),
        ("softmax", 5.0, 2**23),
        ("softmax", 0.2, 0),
    ],
    ids=["uniform-lists", "uniform-cdf", "softmax-T0.2-alias", "softmax-T5-alias", "softmax-T0.2-cdf"],
)
@pytest.mark.parametrize("anchor_class", [0, 4])
def test_class_topk_distribution(
    unequal_labels: torch.Tensor,
    weighting: str,
    temperature: float,
    max_list_size: int,
    anchor_class: int,
    assert_fits,
) -> None:
    sim = _similarity(7)
    sim[anchor_class, 2] = sim[2, anchor_class] = 10.0  # the empty class 2 is in the top-k set: weight 0
    sampler = ClassTopKSampler(
        unequal_labels,
        sim,
        top_k=3,
        weighting=weighting,
        temperature=temperature,
        max_list_size=max_list_size,
    )
    assert (sampler._list is not None) == (max_list_size > 0)  # candidate lists, or inverse CDF
    assert (sampler._list is not None and sampler._pairs is not None) == (
        max_list_size > 0 and weighting == "softmax"
    )  # unequal candidates: an alias table over the list
    ids = _draw(sampler, unequal_labels, anchor_class, seed=7)
    ref = _reference_class_topk(unequal_labels.numpy(), sim.numpy(), anchor_class, 3, weighting, temperature)
    assert_fits(ids, ref)


def test_sample_topk_distribution_is_uniform_over_the_row(unequal_labels: torch.Tensor, assert_fits) -> None:
    feats = torch.randn(300, 8, generator=torch.Generator().manual_seed(3))
    sampler = SampleTopKSampler(unequal_labels, top_k=30)
    sampler.refresh(feats)
    anchor = 17
    ids = sampler.sample(
        torch.full((40,), anchor), unequal_labels[[anchor] * 40], 2500, torch.Generator().manual_seed(4)
    )
    probs = np.zeros(300)
    probs[sampler.table[anchor].long().numpy()] = 1 / 30
    assert_fits(ids, probs)


def test_mixture_distribution_is_the_weighted_mix(unequal_labels: torch.Tensor, assert_fits) -> None:
    sim = _similarity(7, seed=1)
    mix = MixtureSampler(
        [(UniformSampler(unequal_labels), 0.3), (ClassTopKSampler(unequal_labels, sim, 2), 0.7)]
    )
    ids = _draw(mix, unequal_labels, anchor_class=1, seed=5)
    n_u, n_t = split_counts(DRAWS[1], [0.3, 0.7])
    other = (unequal_labels != 1).numpy()
    uniform_ref = other / other.sum()
    topk_ref = _reference_class_topk(unequal_labels.numpy(), sim.numpy(), 1, 2, "uniform", 1.0)
    assert_fits(ids[:, :n_u], uniform_ref)  # columns are grouped by component
    assert_fits(ids[:, n_u:], topk_ref)
    assert_fits(ids, (n_u * uniform_ref + n_t * topk_ref) / DRAWS[1])


@pytest.mark.parametrize("max_list_size", [2**23, 0], ids=["lists-alias", "cdf"])
def test_class_topk_shared_ties_distribution(
    unequal_labels: torch.Tensor, max_list_size: int, assert_fits
) -> None:
    """Classes tied at the k-th place share its weight (1/2 each here), so a row's candidates are not
    equally likely even with uniform weighting: the candidate list needs its alias table."""
    anchor = 0
    sim = torch.zeros(7, 7, dtype=torch.float64)
    sim[anchor, 3] = sim[3, anchor] = 1.0  # class 3 first; 1, 4, 5, 6 (and empty 2) tie for 1 place
    sampler = ClassTopKSampler(unequal_labels, sim, top_k=2, max_list_size=max_list_size)
    assert (sampler._pairs is not None) == (max_list_size > 0)
    labels = unequal_labels.numpy()
    sizes = np.bincount(labels, minlength=7)
    # reference by loops: class weight 1 for class 3, 1/5 for each of the five tied classes
    class_w = {3: 1.0, **{j: 1.0 / 5 for j in (1, 2, 4, 5, 6)}}
    total = sum(w * sizes[j] for j, w in class_w.items())
    ref = np.array([class_w.get(int(y), 0.0) / total for y in labels])
    assert_fits(_draw(sampler, unequal_labels, anchor, seed=11), ref)
