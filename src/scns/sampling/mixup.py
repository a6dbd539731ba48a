"""Latent mixup: pseudo-negatives interpolated between latents (a negative transform)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from scns.sampling.class_index import uniform_below
from scns.sampling.registry import NEGATIVE_TRANSFORMS

MixMode = Literal["anchor", "negatives"]


@NEGATIVE_TRANSFORMS.register("latent_mixup")
class LatentMixup:
    """Makes ``num`` pseudo-negatives per anchor by interpolating latents.

    mode "anchor": ``z~ = lam * anchor + (1 - lam) * n`` with lam ~ U(0, alpha); alpha <= 0.5
    keeps every mix nearer the negative than the anchor. Partners n are the anchor's hardest
    negatives (highest score, j-th pseudo-negative from the j-th hardest) or, with
    ``hardest=False``, negatives drawn uniformly.

    mode "negatives": ``z~ = (1 - lam) * n_a + lam * n_b`` with two different negatives of the
    anchor; n_a as above, n_b drawn uniformly from the same pool (the top ``max(num, 2)``
    negatives when ``hardest``, else all K).

    Results are L2-normalised and fully detached: they act as constant negatives, so no gradient
    reaches the bank or (through the mix) the anchor; the anchor still gets gradient from its
    score against them.

    Args:
        num: pseudo-negatives per anchor (>= 1).
        alpha: upper bound of lam, in (0, 0.5].
        mode: "anchor" or "negatives".
        hardest: mix with the highest-scoring negatives (True) or random ones (False).
    """

    def __init__(self, num: int, alpha: float = 0.5, mode: MixMode = "anchor", hardest: bool = True) -> None:
        if num < 1:
            raise ValueError(f"num (pseudo-negatives per anchor) must be >= 1, got {num}")
        if not 0.0 < alpha <= 0.5:
            raise ValueError(f"alpha must be in (0, 0.5] so mixes stay on the negative's side, got {alpha}")
        if mode not in ("anchor", "negatives"):
            raise ValueError(f"mode must be 'anchor' or 'negatives', got {mode!r}")
        self.num, self.alpha, self.mode, self.hardest = int(num), float(alpha), mode, bool(hardest)

    @torch.no_grad()
    def __call__(
        self,
        anchor: Tensor,
        neg: Tensor,
        neg_scores: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """anchor [B, D], neg [B, K, D], neg_scores [B, K] (``None``: computed as anchor . neg).

        Returns:
            [B, num, D] unit-norm pseudo-negatives (no grad), in ``neg``'s dtype.
        """
        if (
            anchor.dim() != 2
            or neg.dim() != 3
            or neg.shape[0] != anchor.shape[0]
            or neg.shape[2] != anchor.shape[1]
        ):
            raise ValueError(
                f"expected anchor [B, D] and neg [B, K, D], got {tuple(anchor.shape)} and {tuple(neg.shape)}"
            )
        b, k, _ = neg.shape
        pool = max(self.num, 2) if self.mode == "negatives" else self.num
        if self.hardest and pool > k:
            raise ValueError(f"hardest mixing needs at least {pool} negatives per anchor, got K={k}")
        if self.mode == "negatives" and k < 2:
            raise ValueError("mode 'negatives' mixes two different negatives, so K must be >= 2")
        anchor, neg = anchor.detach(), neg.detach()
        dev = neg.device
        if self.hardest:
            if neg_scores is None:
                neg_scores = torch.bmm(neg, anchor.unsqueeze(2).to(neg.dtype)).squeeze(2)
            if neg_scores.shape != (b, k):
                raise ValueError(f"neg_scores must be [B, K] = {(b, k)}, got {tuple(neg_scores.shape)}")
            pool_ids = neg_scores.detach().topk(pool, dim=1).indices  # [B, pool]
        else:
            pool, pool_ids = k, torch.arange(k, device=dev).expand(b, -1)
        if self.hardest:
            first_pos = (torch.arange(self.num, device=dev) % pool).expand(b, -1)
        else:
            first_pos = uniform_below(torch.tensor(k, device=dev), (b, self.num), generator)
        first = pool_ids.gather(1, first_pos)
        lam = self.alpha * torch.rand((b, self.num, 1), generator=generator, device=dev, dtype=neg.dtype)
        a = neg.gather(1, first.unsqueeze(2).expand(-1, -1, neg.shape[2]))
        if self.mode == "anchor":
            mixed = lam * anchor.to(neg.dtype).unsqueeze(1) + (1 - lam) * a
        else:
            shift = 1 + uniform_below(torch.tensor(pool - 1, device=dev), (b, self.num), generator)
            second = pool_ids.gather(1, (first_pos + shift) % pool)
            other = neg.gather(1, second.unsqueeze(2).expand(-1, -1, neg.shape[2]))
            mixed = (1 - lam) * a + lam * other
        return F.normalize(mixed, dim=2)

    def __repr__(self) -> str:
        return f"LatentMixup(num={self.num}, alpha={self.alpha}, mode={self.mode!r}, hardest={self.hardest})"
