"""Latent mixup: pseudo-negatives interpolated between latents (a negative transform)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from scns.sampling.class_index import uniform_below
from scns.sampling.registry import NEGATIVE_TRANSFORMS

MixMode = Literal["anchor", "negatives"]
LamDist = Literal["uniform", "beta"]


@NEGATIVE_TRANSFORMS.register("latent_mixup")
class LatentMixup:
    """Makes ``num`` pseudo-negatives per anchor by interpolating latents.

    mode "anchor": ``z~ = lam * anchor + (1 - lam) * n`` with lam below 0.5, so every mix stays
    nearer the negative than the anchor. Partners n are the anchor's hardest negatives (highest
    score, j-th pseudo-negative from the j-th hardest) or, with ``hardest=False``, negatives
    drawn uniformly.

    mode "negatives": ``z~ = (1 - lam) * n_a + lam * n_b`` with two different negatives of the
    anchor (the anchor itself never enters); n_a as above, n_b drawn uniformly from the same
    pool (the top ``max(num, 2)`` negatives when ``hardest``, else all K).

    The mixing weight lam:

    - ``lam_dist="uniform"`` (default; the earlier grids): lam ~ U(0, alpha), alpha in (0, 0.5].
    - ``lam_dist="beta"``: ``lam = 2 * lam_max * min(b, 1 - b)`` with b ~ Beta(alpha, alpha):
      the mixup convention of folding b onto [0, 0.5], scaled to [0, lam_max], lam_max < 0.5.
      Its CDF is ``2 * I_{x / (2 lam_max)}(alpha, alpha)`` (I the regularised incomplete beta);
      alpha = 1 gives U(0, lam_max), alpha < 1 puts most mixes near the negative (easy), alpha > 1
      near ``lam_max`` (hard).

    Results are L2-normalised and fully detached: they act as constant negatives, so no gradient
    reaches the bank or (through the mix) the anchor; the anchor still gets gradient from its
    score against them.

    Args:
        num: pseudo-negatives per anchor (>= 1).
        alpha: "uniform": upper bound of lam, in (0, 0.5]; "beta": the Beta concentration, > 0.
        mode: "anchor" or "negatives".
        hardest: mix with the highest-scoring negatives (True) or random ones (False).
        lam_dist: "uniform" or "beta".
        lam_max: upper bound of lam under "beta", in (0, 0.5); unused by "uniform".
        cap_above_positive: a pseudo-negative that scores above the anchor's positive is
            dropped (its score set to ``-inf`` by :meth:`cap`, so it carries no softmax mass and
            no gradient); default False (the earlier behaviour).
    """

    def __init__(
        self,
        num: int,
        alpha: float = 0.5,
        mode: MixMode = "anchor",
        hardest: bool = True,
        lam_dist: LamDist = "uniform",
        lam_max: float = 0.4,
        cap_above_positive: bool = False,
    ) -> None:
        if num < 1:
            raise ValueError(f"num (pseudo-negatives per anchor) must be >= 1, got {num}")
        if lam_dist not in ("uniform", "beta"):
            raise ValueError(f"lam_dist must be 'uniform' or 'beta', got {lam_dist!r}")
        if lam_dist == "uniform" and not 0.0 < alpha <= 0.5:
            raise ValueError(
                f"alpha must be in (0, 0.5] so mixes stay on the negative's side, got {alpha} "
                "(lam ~ U(0, alpha); for lam ~ Beta(alpha, alpha) set lam_dist='beta')"
            )
        if lam_dist == "beta" and not (alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha (the Beta(alpha, alpha) concentration) must be > 0, got {alpha}")
        if not 0.0 < lam_max < 0.5:
            raise ValueError(f"lam_max must be in (0, 0.5) so mixes stay nearer the negative, got {lam_max}")
        if mode not in ("anchor", "negatives"):
            raise ValueError(f"mode must be 'anchor' or 'negatives', got {mode!r}")
        self.num, self.alpha, self.mode, self.hardest = int(num), float(alpha), mode, bool(hardest)
        self.lam_dist, self.lam_max = lam_dist, float(lam_max)
        self.cap_above_positive = bool(cap_above_positive)

    def sample_lam(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Mixing weights lam of the configured distribution, ``shape`` in ``dtype``."""
        if self.lam_dist == "uniform":
            return self.alpha * torch.rand(shape, generator=generator, device=device, dtype=dtype)
        n = math.prod(shape)
        conc = torch.full((n, 2), self.alpha, dtype=torch.float64, device=device)
        # Beta(a, a) as a two-part Dirichlet: torch's sampler takes a generator and handles tiny
        # concentrations without 0 / 0 (Gamma draws that underflow)
        b = torch._sample_dirichlet(conc, generator)[:, 0]
        return (2 * self.lam_max * torch.minimum(b, 1 - b)).view(shape).to(dtype)

    def cap(self, scores: Tensor, pos: Tensor) -> Tensor:
        """Pseudo-negative scores [B, M] with those above the positive pos [B] set to ``-inf``
        when ``cap_above_positive`` (else unchanged). ``-inf`` carries no softmax mass and no
        gradient; the positive is compared detached."""
        if not self.cap_above_positive:
            return scores
        if pos.shape != scores.shape[:1] or scores.dim() != 2:
            raise ValueError(
                f"expected scores [B, M] and pos [B], got {tuple(scores.shape)} and {tuple(pos.shape)}"
            )
        above = scores.detach() > pos.detach().unsqueeze(1)
        return scores.masked_fill(above, float("-inf"))

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
        lam = self.sample_lam((b, self.num, 1), generator, dev, neg.dtype)
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
        lam = f"lam_dist={self.lam_dist!r}" + (f", lam_max={self.lam_max}" if self.lam_dist == "beta" else "")
        return (
            f"LatentMixup(num={self.num}, alpha={self.alpha}, mode={self.mode!r}, hardest={self.hardest}, "
            f"{lam}, cap_above_positive={self.cap_above_positive})"
        )
