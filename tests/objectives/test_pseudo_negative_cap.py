"""BankContrast's latent-mixup pseudo-negatives: the cap above the positive, against loop references
(masked entries, the loss and its gradient, the softmax mass they hold), and random partners."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scns.objectives.contrast import BankContrast
from scns.sampling import LatentMixup
from scns.sampling.stats import mass_share

N, D, B, K, M, T = 64, 8, 16, 12, 6, 0.1


def _contrast(loss: str = "infonce", **mixup) -> BankContrast:
    c = BankContrast(N, D, loss=loss, temperature=T, mixup=LatentMixup(num=M, **mixup))
    c.bank.memory.copy_(F.normalize(torch.randn(N, D, generator=torch.Generator().manual_seed(0)), dim=1))
    return c


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    anchor = F.normalize(torch.randn(B, D, generator=g), dim=1)
    return anchor, torch.randint(0, N, (B,), generator=g), torch.randint(0, N, (B, K), generator=g)


def _scores(c: BankContrast, anchor, pos_idx, neg_idx, seed: int = 2):
    pos = c.bank.scores(anchor, pos_idx.unsqueeze(1)).squeeze(1)
    neg = c.bank.scores(anchor, neg_idx)
    pseudo = c._pseudo_negative_scores(anchor, neg_idx, neg, pos, torch.Generator().manual_seed(seed))
    return pos, neg, pseudo


@pytest.mark.parametrize("mode", ["anchor", "negatives"])
@pytest.mark.parametrize("lam_dist", ["uniform", "beta"])
def test_cap_masks_exactly_the_pseudo_negatives_above_the_positive(inputs, mode: str, lam_dist: str) -> None:
    opts = {"mode": mode, "lam_dist": lam_dist, "alpha": 0.5}
    pos, _, raw = _scores(_contrast(**opts), *inputs)
    _, _, capped = _scores(_contrast(cap_above_positive=True, **opts), *inputs)
    masked = 0
    for b in range(B):
        for m in range(M):
            if raw[b, m] > pos[b]:
                assert capped[b, m].item() == float("-inf")
                masked += 1
            else:
                assert capped[b, m].item() == raw[b, m].item()
    assert 0 < masked < B * M  # the fixture exercises both branches


@pytest.mark.parametrize("loss", ["infonce", "nce"])
def test_masked_pseudo_negatives_carry_no_loss_and_no_gradient(inputs, loss: str) -> None:
    anchor, pos_idx, neg_idx = inputs
    capped = _contrast(loss, cap_above_positive=True)
    a1 = anchor.clone().requires_grad_(True)
    value, _ = capped(a1, pos_idx, neg_idx, torch.Generator().manual_seed(2))
    value.backward()
    assert torch.isfinite(value) and bool(torch.isfinite(a1.grad).all())
    if loss != "infonce":
        return
    # reference: per anchor, InfoNCE over the positive, the real negatives and only the kept
    # pseudo-negatives (the masked ones removed from the list, not set to -inf)
    a2 = anchor.clone().requires_grad_(True)
    pos, neg, raw = _scores(_contrast(loss), a2, pos_idx, neg_idx)
    terms = []
    for b in range(B):
        keep = raw[b][raw[b].detach() <= pos[b].detach()]
        logits = torch.cat([pos[b : b + 1], neg[b], keep]) / T
        terms.append(-torch.log_softmax(logits, 0)[0])
    reference = torch.stack(terms).mean()
    reference.backward()
    torch.testing.assert_close(value, reference)
    torch.testing.assert_close(a1.grad, a2.grad)


def _mass_share_loop(pos, scores, first: int) -> float:
    """Mean over anchors of sum_{j >= first} exp(s_j / T) / (exp(pos / T) + sum_j exp(s_j / T))."""
    shares = []
    for b in range(pos.shape[0]):
        w = [math.exp(s / T) for s in scores[b].tolist() if s != float("-inf")]
        sel = [math.exp(s / T) for s in scores[b, first:].tolist() if s != float("-inf")]
        shares.append(sum(sel) / (math.exp(pos[b].item() / T) + sum(w)))
    return sum(shares) / len(shares)


def test_cap_bounds_the_softmax_mass_of_pseudo_negatives(inputs) -> None:
    pos, neg, raw = (t.detach() for t in _scores(_contrast(), *inputs))
    _, _, capped = (t.detach() for t in _scores(_contrast(cap_above_positive=True), *inputs))
    is_pseudo = torch.arange(K + M) >= K
    before = mass_share(pos, torch.cat([neg, raw], 1), is_pseudo, T)
    after = mass_share(pos, torch.cat([neg, capped], 1), is_pseudo, T)
    assert before.item() == pytest.approx(_mass_share_loop(pos, torch.cat([neg, raw], 1), K), rel=1e-5)
    assert after.item() == pytest.approx(_mass_share_loop(pos, torch.cat([neg, capped], 1), K), rel=1e-5)
    assert after < before
    # every kept pseudo-negative scores <= the positive, so together they hold at most M times its mass
    logits = torch.cat([pos.unsqueeze(1), neg, capped], 1) / T
    p = torch.softmax(logits, 1)
    assert bool((p[:, 1 + K :].sum(1) <= M * p[:, 0] + 1e-6).all())


def test_random_partners_are_drawn_from_every_column(inputs) -> None:
    """hardest=False mixes with columns picked at random from all K (not the first ones, which a
    mixture sampler fills from its first component)."""
    anchor, pos_idx, neg_idx = inputs
    neg_idx = torch.arange(K).expand(B, -1).contiguous()  # column j holds bank row j
    c = _contrast()
    seen: set[int] = set()

    class Recorder(LatentMixup):
        def __call__(self, anchor_, partners, neg_scores=None, generator=None):
            rows = (partners @ c.bank.memory.T).argmax(2)  # [B, pool] bank rows (unit vectors)
            seen.update(rows.flatten().tolist())
            return super().__call__(anchor_, partners, neg_scores, generator)

    c.mixup = Recorder(num=M, hardest=False)
    for seed in range(5):
        _scores(c, anchor, pos_idx, neg_idx, seed)
    assert seen == set(range(K))
