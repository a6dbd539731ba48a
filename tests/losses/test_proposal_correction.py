"""The losses' proposal correction (beta): with beta = 1, non-uniform negatives give an unbiased
estimate of the uniform objective (InfoNCE's denominator; NCE's expected noise term) over the
proposal's support (all of it for a proposal with a uniform part), checked by Monte Carlo against the
exact sums over a small bank (4 standard errors: a correct estimator fails with probability ~6e-5)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scns.losses import InfoNCELoss, NCELoss
from scns.objectives.negatives import NegativeSource
from scns.sampling import ClassTopKSampler, MixtureSampler, UniformSampler

N, C, D, K, T = 60, 6, 8, 16, 0.5
REPEATS = 4000


def _setup(full_support: bool = True):
    """A non-uniform proposal: class top-3 by softmax, mixed with uniform (full support) or alone."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(N) % C
    bank = F.normalize(torch.randn(N, D, generator=g, dtype=torch.float64), dim=1)
    sim = torch.rand(C, C, generator=g, dtype=torch.float64)
    sampler = ClassTopKSampler(labels, (sim + sim.T) / 2, 3, weighting="softmax", temperature=0.2)
    if full_support:
        sampler = MixtureSampler([(UniformSampler(labels), 0.25), (sampler, 0.75)])
    anchor_id = 0  # class 0
    anchor = F.normalize(bank[anchor_id] + 0.5 * torch.randn(D, generator=g, dtype=torch.float64), dim=0)
    scores = bank @ anchor  # [N]
    index = torch.tensor([anchor_id])
    all_ids = torch.arange(N).unsqueeze(0)
    log_q = sampler.log_prob(index, labels[index], all_ids)[0].double()
    log_u = UniformSampler(labels).log_prob(index, labels[index], all_ids)[0].double()
    return labels, sampler, scores, index, log_q, log_u


def _draws(sampler, labels, index):
    idx = index.expand(REPEATS)
    return sampler.sample(idx, labels[idx], K, torch.Generator().manual_seed(1))  # [R, K]


def test_infonce_denominator_is_unbiased_for_the_uniform_objective_at_beta_1() -> None:
    labels, sampler, scores, index, log_q, log_u = _setup()
    other = torch.isfinite(log_u)
    exact_uniform = K * (log_u[other].exp() * (scores[other] / T).exp()).sum()  # K uniform draws
    exact_q = K * (log_q.exp() * (scores / T).exp()).sum()  # what beta = 0 sees on average
    neg = _draws(sampler, labels, index)
    ratio = (log_q - log_u)[neg]  # [R, K]
    for beta, target in ((1.0, exact_uniform), (0.0, exact_q)):
        estimates = ((scores[neg] / T) - beta * ratio).exp().sum(1)  # [R]
        se = estimates.std() / math.sqrt(REPEATS)
        assert abs(estimates.mean() - target) < 4 * se, (beta, float(estimates.mean()), float(target))
    assert abs(exact_q - exact_uniform) > 10 * se  # the correction matters for this proposal

    # a proposal restricted to the top classes estimates the uniform sum over its support only
    labels, topk, scores, index, log_q, log_u = _setup(full_support=False)
    support = torch.isfinite(log_q)
    restricted = K * (log_u[support].exp() * (scores[support] / T).exp()).sum()
    neg = _draws(topk, labels, index)
    estimates = ((scores[neg] / T) - (log_q - log_u)[neg]).exp().sum(1)
    assert abs(estimates.mean() - restricted) < 4 * estimates.std() / math.sqrt(REPEATS)

    # the loss is exactly -log softmax with those corrected logits
    ratio = (log_q - log_u)[neg]
    pos = torch.tensor([0.8], dtype=torch.float64)
    one = neg[:1]
    loss = InfoNCELoss(T)(pos, scores[one], ratio[:1])
    denominator = ((scores[one] / T) - ratio[:1]).exp().sum()
    assert float(loss) == pytest.approx(
        float(-(pos / T) + torch.log((pos / T).exp() + denominator)), rel=1e-9
    )


def test_nce_noise_term_is_nce_with_the_true_noise_density_at_beta_1() -> None:
    labels, sampler, scores, index, log_q, log_u = _setup()
    neg = _draws(sampler, labels, index)
    ratio = (log_q - log_u)[neg].float()
    nce = NCELoss(N, temperature=T)
    nce.log_z.fill_(2.0)  # a fixed normaliser (first_batch mode keeps it)
    pos = torch.full((REPEATS,), 0.7)
    chunk = 100  # the loss is a batch mean: chunk means are i.i.d., their spread gives the error
    losses = torch.stack(
        [
            nce(pos[i : i + chunk], scores[neg[i : i + chunk]].float(), ratio[i : i + chunk])
            for i in range(0, REPEATS, chunk)
        ]
    ).double()
    log_p = scores / T - 2.0  # log P(. | v) of every id
    pos_term = F.softplus(torch.tensor(math.log(K / N)) - (0.7 / T - 2.0))
    # E over K draws from q of sum_k softplus(log P_k - log(K Pn_k)), Pn_k = (1/N) (q_k / u_k)
    finite = torch.isfinite(log_q)
    log_noise = math.log(K / N) + (log_q - log_u)[finite]
    exact = pos_term + K * (log_q[finite].exp() * F.softplus(log_p[finite] - log_noise)).sum()
    se = losses.std() / math.sqrt(losses.numel())
    assert abs(losses.mean() - exact) < 4 * se, (float(losses.mean()), float(exact))


def test_uniform_negatives_get_no_correction_whatever_beta() -> None:
    labels = torch.arange(N) % C
    source = NegativeSource(UniformSampler(labels), labels, K, proposal_beta=1.0)
    index = torch.arange(8)
    neg = source(index, labels[index], torch.Generator().manual_seed(0))
    assert torch.equal(source.log_ratio(index, labels[index], neg), torch.zeros(8, K))
    assert NegativeSource(UniformSampler(labels), labels, K).log_ratio(index, labels[index], neg) is None
