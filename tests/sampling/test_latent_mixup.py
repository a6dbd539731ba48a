"""LatentMixup: each pseudo-negative is the documented interpolation of the documented partners."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scns.sampling import NEGATIVE_TRANSFORMS, LatentMixup

B, K, D = 4, 12, 8


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    anchor = F.normalize(torch.randn(B, D, generator=g, dtype=torch.float64), dim=1).requires_grad_(True)
    neg = F.normalize(torch.randn(B, K, D, generator=g, dtype=torch.float64), dim=2)
    scores = torch.einsum("bd,bkd->bk", anchor.detach(), neg)
    return anchor, neg, scores


def _decompose(r: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[float, float]:
    """Least squares r ~ x u + y v; returns (y / (x + y), residual norm)."""
    basis = torch.stack([u, v], dim=1)
    coef = torch.linalg.lstsq(basis, r.unsqueeze(1)).solution.flatten()
    residual = (basis @ coef - r).norm().item()
    return (coef[1] / coef.sum()).item(), residual


def test_anchor_mode_mixes_anchor_with_the_hardest_negatives(batch) -> None:
    anchor, neg, scores = batch
    out = LatentMixup(num=3, alpha=0.4, mode="anchor")(anchor, neg, scores, torch.Generator().manual_seed(1))
    assert out.shape == (B, 3, D) and not out.requires_grad
    torch.testing.assert_close(out.norm(dim=2), torch.ones(B, 3, dtype=torch.float64))
    hardest = scores.argsort(dim=1, descending=True)[:, :3]
    for b in range(B):
        for j in range(3):
            lam, residual = _decompose(out[b, j], neg[b, hardest[b, j]], anchor[b].detach())
            assert residual < 1e-10 and 0 <= lam <= 0.4


def test_negatives_mode_mixes_two_different_pool_negatives(batch) -> None:
    anchor, neg, scores = batch
    num = 3
    out = LatentMixup(num=num, alpha=0.5, mode="negatives")(
        anchor, neg, scores, torch.Generator().manual_seed(2)
    )
    hardest = scores.argsort(dim=1, descending=True)[:, :num]
    for b in range(B):
        for j in range(num):
            fits = []
            for other in hardest[b].tolist():
                if other == hardest[b, j]:
                    continue
                lam, residual = _decompose(out[b, j], neg[b, hardest[b, j]], neg[b, other])
                fits.append(residual < 1e-10 and 0 <= lam <= 0.5)
            assert sum(fits) == 1, "exactly one other pool negative explains the mix"


def test_scores_default_to_dot_products(batch) -> None:
    anchor, neg, scores = batch
    mix = LatentMixup(num=2)
    a = mix(anchor, neg, scores, torch.Generator().manual_seed(3))
    b = mix(anchor, neg, None, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_random_partners_cover_every_negative(batch) -> None:
    anchor, neg, _ = batch
    out = LatentMixup(num=400, alpha=0.5, hardest=False)(anchor, neg, None, torch.Generator().manual_seed(4))
    # the partner is the negative whose plane with the anchor contains the mix
    a = anchor.detach().unsqueeze(1)  # [B, 1, D]
    e2 = F.normalize(neg - (neg * a).sum(2, keepdim=True) * a, dim=2)  # [B, K, D], orthogonal to a
    r = out.unsqueeze(2)  # [B, n, 1, D]
    in_plane = (r * a.unsqueeze(1)).sum(3, keepdim=True) * a.unsqueeze(1) + (r * e2.unsqueeze(1)).sum(
        3, keepdim=True
    ) * e2.unsqueeze(1)
    residual = (r - in_plane).norm(dim=3)  # [B, n, K]
    assert bool((residual.min(2).values < 1e-10).all())
    partner = residual.argmin(2)
    assert all(set(partner[b].tolist()) == set(range(K)) for b in range(B))


def test_no_gradient_flows_through_the_mix(batch) -> None:
    anchor, neg, _ = batch
    neg = neg.clone().requires_grad_(True)
    out = LatentMixup(num=2)(anchor, neg)
    assert not out.requires_grad and out.grad_fn is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num": 2, "alpha": 0.6}, r"alpha must be in \(0, 0.5\]"),
        ({"num": 2, "alpha": 0.0}, "alpha"),
        ({"num": 0}, "num"),
        ({"num": 2, "mode": "both"}, "mode"),
    ],
)
def test_argument_errors(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LatentMixup(**kwargs)


def test_hardest_needs_enough_negatives(batch) -> None:
    anchor, neg, _ = batch
    with pytest.raises(ValueError, match="at least 13 negatives"):
        LatentMixup(num=13)(anchor, neg)


def test_registry() -> None:
    mix = NEGATIVE_TRANSFORMS.build("latent_mixup", num=4, alpha=0.3, mode="negatives")
    assert isinstance(mix, LatentMixup) and (mix.num, mix.alpha, mix.mode) == (4, 0.3, "negatives")


LAM_MAX = 0.4


def _folded_beta_cdf(alpha: float, lam_max: float):
    """CDF of ``2 lam_max min(b, 1 - b)``, b ~ Beta(alpha, alpha): ``2 I_{x / (2 lam_max)}(alpha, alpha)``."""
    special = pytest.importorskip("scipy.special")
    return lambda x: np.clip(2 * special.betainc(alpha, alpha, np.asarray(x) / (2 * lam_max)), 0.0, 1.0)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.0])
def test_beta_lambda_follows_the_folded_scaled_beta(alpha: float) -> None:
    """KS test of 20,000 draws against the closed-form CDF (fixed seed, p-value floor 1e-3)."""
    stats = pytest.importorskip("scipy.stats")
    mix = LatentMixup(num=1, alpha=alpha, lam_dist="beta", lam_max=LAM_MAX)
    lam = mix.sample_lam((20000,), torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    assert lam.min() >= 0 and lam.max() <= LAM_MAX
    assert stats.kstest(lam, _folded_beta_cdf(alpha, LAM_MAX)).pvalue > 1e-3
    if alpha != 1.0:  # the test has power: the draws are far from U(0, lam_max)
        assert stats.kstest(lam, stats.uniform(0, LAM_MAX).cdf).pvalue < 1e-6


def test_uniform_lambda_is_the_old_draw() -> None:
    mix = LatentMixup(num=3, alpha=0.3)
    assert mix.lam_dist == "uniform"
    got = mix.sample_lam((4, 3, 1), torch.Generator().manual_seed(5))
    assert torch.equal(got, 0.3 * torch.rand((4, 3, 1), generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("mode", ["anchor", "negatives"])
def test_beta_mixes_stay_below_lam_max(batch, mode: str) -> None:
    anchor, neg, scores = batch
    mix = LatentMixup(num=3, alpha=2.0, mode=mode, lam_dist="beta", lam_max=0.3)
    out = mix(anchor, neg, scores, torch.Generator().manual_seed(6))
    hardest = scores.argsort(dim=1, descending=True)[:, :3]
    for b in range(B):
        for j in range(3):
            first = neg[b, hardest[b, j]]
            others = (
                [anchor[b].detach()]
                if mode == "anchor"
                else [neg[b, o] for o in hardest[b] if o != hardest[b, j]]
            )
            fits = []
            for other in others:
                lam, residual = _decompose(out[b, j], first, other)
                fits.append(residual < 1e-10 and 0 <= lam <= 0.3)
            assert sum(fits) == 1


def test_cap_sets_scores_above_the_positive_to_minus_inf() -> None:
    g = torch.Generator().manual_seed(7)
    scores, pos = torch.randn(6, 9, generator=g), torch.randn(6, generator=g)
    assert LatentMixup(num=2).cap(scores, pos) is scores  # off by default
    capped = LatentMixup(num=2, cap_above_positive=True).cap(scores, pos)
    for b in range(6):
        for m in range(9):
            want = float("-inf") if scores[b, m] > pos[b] else scores[b, m].item()
            assert capped[b, m].item() == want


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lam_dist": "gauss"}, "lam_dist"),
        ({"lam_dist": "beta", "lam_max": 0.5}, r"lam_max must be in \(0, 0.5\)"),
        ({"lam_dist": "beta", "alpha": 0.0}, "concentration"),
        ({"alpha": 0.7}, "lam_dist='beta'"),
    ],
)
def test_beta_argument_errors(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LatentMixup(num=2, **kwargs)
    assert LatentMixup(num=2, alpha=4.0, lam_dist="beta").alpha == 4.0  # any concentration > 0
