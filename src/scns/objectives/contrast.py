"""A contrastive term over a memory bank: anchors scored against banked positives and negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scns.losses import LOSSES
from scns.memory import MemoryBank
from scns.objectives.negatives import ContrastScores
from scns.sampling import LatentMixup


class Embed(nn.Module):
    """Linear projection to the contrastive space, L2-normalised: [B, F] -> [B, D] (CRD's embed head)."""

    def __init__(self, in_dim: int, out_dim: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(self.linear(features.flatten(1)), dim=1)


class BankContrast(nn.Module):
    """Scores anchors against one memory bank and applies NCE or InfoNCE.

    Args:
        n: bank rows (training-set size N). dim: embedding size D.
        loss: "nce" (CRD) or "infonce". temperature: T. nce_z: NCE partition estimate mode.
        bank_momentum: m of the bank's momentum update. bank_dtype: the bank's storage dtype.
        mixup: optional latent mixup appending pseudo-negatives to each anchor's negatives.
    """

    def __init__(
        self,
        n: int,
        dim: int,
        loss: str = "nce",
        temperature: float = 0.07,
        nce_z: str = "first_batch",
        bank_momentum: float = 0.5,
        bank_dtype: torch.dtype = torch.float32,
        mixup: LatentMixup | None = None,
    ) -> None:
        super().__init__()
        self.bank = MemoryBank(n, dim, momentum=bank_momentum, dtype=bank_dtype)
        options = (
            {"n_data": n, "temperature": temperature, "z_mode": nce_z}
            if loss == "nce"
            else {"temperature": temperature}
        )
        self.criterion = LOSSES.build(loss, **options)
        self.temperature = float(temperature)
        self.mixup = mixup

    def forward(
        self,
        anchor: Tensor,
        pos_idx: Tensor,
        neg_idx: Tensor,
        generator: torch.Generator | None = None,
        log_ratio: Tensor | None = None,
    ) -> tuple[Tensor, ContrastScores]:
        """anchor [B, D] (unit norm, with grad), pos_idx [B], neg_idx [B, K] -> (loss, scores).

        ``log_ratio`` [B, K]: the negatives' proposal correction for the loss (see
        :meth:`NegativeSource.log_ratio`); latent-mixup pseudo-negatives, which no sampler drew, get
        none. ``scores`` are the step's detached scores, for diagnostics.
        """
        anchor = anchor.float()
        pos = self.bank.scores(anchor, pos_idx.unsqueeze(1)).squeeze(1)  # [B]
        neg = self.bank.scores(anchor, neg_idx)  # [B, K]
        pseudo = None
        if self.mixup is not None:
            pseudo = self._pseudo_negative_scores(anchor, neg_idx, neg, pos, generator)  # [B, M]
            if log_ratio is not None:
                log_ratio = torch.cat([log_ratio, log_ratio.new_zeros(pseudo.shape)], dim=1)
            all_neg = torch.cat([neg, pseudo], dim=1)
        else:
            all_neg = neg
        # a loss that takes no proposal correction still serves runs without one (beta = 0)
        loss = self.criterion(pos, all_neg) if log_ratio is None else self.criterion(pos, all_neg, log_ratio)
        scores = ContrastScores(
            pos=pos.detach(),
            neg=neg.detach(),
            pseudo=None if pseudo is None else pseudo.detach(),
            temperature=self.temperature,
        )
        return loss, scores

    def _pseudo_negative_scores(
        self, anchor: Tensor, neg_idx: Tensor, neg: Tensor, pos: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """[B, M] scores of the anchors [B, D] against their latent-mixup pseudo-negatives.

        Only the mixing partners' rows are read from the bank: the hardest ``pool`` negatives or,
        without ``hardest``, ``pool`` distinct columns of neg_idx [B, K] picked uniformly at random
        (columns may be grouped by mixture component, so the first ones are not a random subset).
        With ``cap_above_positive`` the pseudo-negatives scoring above the positive pos [B] get
        ``-inf`` (no softmax mass, no gradient).
        """
        mixup = self.mixup
        assert mixup is not None
        b, k = neg_idx.shape
        pool = max(mixup.num, 2) if mixup.mode == "negatives" else mixup.num
        pool = min(pool, k)
        if mixup.hardest:
            cols = neg.detach().topk(pool, dim=1).indices
        else:
            keys = torch.rand((b, k), generator=generator, device=neg_idx.device)
            cols = keys.topk(pool, dim=1).indices
        partners = self.bank.gather(neg_idx.gather(1, cols)).to(anchor.dtype)  # [B, pool, D]
        pseudo = mixup(anchor, partners, neg.detach().gather(1, cols), generator)  # [B, M, D], no grad
        return mixup.cap(torch.bmm(pseudo, anchor.unsqueeze(2)).squeeze(2), pos)

    @torch.no_grad()
    def update(self, index: Tensor, z: Tensor) -> None:
        """Momentum-update the bank rows ``index`` [B] with embeddings z [B, D]."""
        self.bank.update(index, z.detach().float())
