"""LatentMixup: each pseudo-negative is the documented interpolation of the documented partners."""

from __future__ import annotations

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
