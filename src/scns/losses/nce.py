"""CRD's noise-contrastive estimation loss over memory-bank scores."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scns import dist
from scns.losses.registry import LOSSES

ZMode = Literal["first_batch", "running"]


@LOSSES.register("nce")
class NCELoss(nn.Module):
    """NCE with a uniform noise distribution Pn = 1 / N, as in CRD.

    P(pos | v) is modelled as ``exp(s / T) / Z`` for a score s. The partition estimate
    ``Z = mean(exp(s / T)) * N`` over a batch's [B, 1 + K] scores is taken from the first batch and
    then frozen ("first_batch", CRD's choice) or tracked as an exponential moving average
    ``Z <- momentum * Z + (1 - momentum) * Z_batch`` ("running"; the batch's own estimate is
    included before the loss is computed; under DDP the ranks' estimates are averaged). Z is a
    constant for the gradient. It lives in the
    ``log_z`` buffer (NaN until the first batch), so a resumed run keeps it.

    Loss per anchor, with P_0 the positive's and P_k the negatives' probabilities::

        -[log(P_0 / (P_0 + K Pn)) + sum_k log(K Pn / (P_k + K Pn))]

    averaged over the batch (computed stably in log space, without CRD's 1e-7 epsilon).

    Args:
        n_data: N, the number of samples in the bank (noise distribution 1 / N).
        temperature: T > 0.
        z_mode: "first_batch" or "running".
        momentum: EMA weight of the old estimate in "running" mode, in [0, 1).
    """

    log_z: Tensor  # float64 scalar buffer

    def __init__(
        self, n_data: int, temperature: float = 0.07, z_mode: ZMode = "first_batch", momentum: float = 0.99
    ) -> None:
        super().__init__()
        if n_data < 1:
            raise ValueError(f"n_data must be >= 1, got {n_data}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if z_mode not in ("first_batch", "running"):
            raise ValueError(f"z_mode must be 'first_batch' or 'running', got {z_mode!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.n_data, self.temperature, self.z_mode, self.momentum = (
            int(n_data),
            float(temperature),
            z_mode,
            float(momentum),
        )
        self.register_buffer("log_z", torch.tensor(float("nan"), dtype=torch.float64))
        self._z_fixed = False  # "first_batch" with log_z set: no batch estimate is needed any more

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._z_fixed = False  # a loaded log_z is read again on the next call

    def _needs_batch_estimate(self) -> bool:
        """Whether this call must estimate Z from its batch: always when "running"; in "first_batch"
        mode only until log_z holds an estimate (one host read per call until then, none after)."""
        if self.z_mode == "running":
            return True
        if not self._z_fixed:
            self._z_fixed = not bool(torch.isnan(self.log_z))
        return not self._z_fixed

    @property
    def z(self) -> Tensor:
        """The current partition estimate Z (NaN before the first batch)."""
        return self.log_z.exp()

    def forward(self, pos_scores: Tensor, neg_scores: Tensor, log_ratio: Tensor | None = None) -> Tensor:
        """pos_scores [B] and neg_scores [B, K] (dot products) -> scalar loss.

        ``log_ratio`` [B, K] (optional, no grad): beta * log(q / u) of each negative, its proposal
        q against the uniform proposal u, scaled by the correction exponent beta in [0, 1]. Each
        negative's noise density becomes ``Pn * (q / u) ** beta``: beta = 1 is NCE with the noise
        density the negatives were really drawn from, beta = 0 (or None) CRD's uniform Pn. The
        positive, which no sampler draws, keeps the uniform Pn.
        """
        if pos_scores.dim() != 1 or neg_scores.dim() != 2 or neg_scores.shape[0] != pos_scores.shape[0]:
            raise ValueError(
                f"expected pos_scores [B] and neg_scores [B, K], got {tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}"
            )
        # noise samples per anchor: masked (-inf) scores, e.g. capped pseudo-negatives, are not drawn
        k = torch.isfinite(neg_scores.detach()).sum(1).clamp_min(1).to(torch.float64)  # [B]
        logits = torch.cat([pos_scores.unsqueeze(1), neg_scores], dim=1) / self.temperature  # [B, 1 + K]
        if self._needs_batch_estimate():  # a fixed estimate skips a float64 pass over the scores
            self._update_log_z(logits.detach())
        log_p = logits - self.log_z.to(logits.dtype)  # log P(. | v)
        log_noise = (k.log() - math.log(self.n_data)).to(log_p.dtype)  # log(K * Pn), [B]
        # log(P / (P + c)) = -softplus(log c - log P);  log(c / (P + c)) = -softplus(log P - log c)
        pos_term = F.softplus(log_noise - log_p[:, 0])
        log_noise = log_noise.unsqueeze(1)
        neg_log_noise = log_noise if log_ratio is None else log_noise + log_ratio.to(log_p.dtype)
        neg_term = F.softplus(log_p[:, 1:] - neg_log_noise).sum(1)
        return (pos_term + neg_term).mean()

    @torch.no_grad()
    def _update_log_z(self, logits: Tensor) -> None:
        """Fold this batch's estimate of log Z (from its [B, 1 + K] logits) into ``log_z``."""
        flat = logits.to(torch.float64).flatten()
        count = torch.isfinite(flat).sum().clamp_min(1).to(torch.float64)  # masked scores excluded
        batch_log_z = torch.logsumexp(flat, 0) - count.log() + math.log(self.n_data)
        batch_log_z = _mean_over_ranks(batch_log_z)
        if self.z_mode == "first_batch":
            new = torch.where(torch.isnan(self.log_z), batch_log_z, self.log_z)
        else:
            ema = torch.logaddexp(
                math.log(self.momentum) + self.log_z, math.log1p(-self.momentum) + batch_log_z
            )
            new = torch.where(torch.isnan(self.log_z), batch_log_z, ema)
        self.log_z.copy_(new)

    def extra_repr(self) -> str:
        return f"n_data={self.n_data}, temperature={self.temperature}, z_mode={self.z_mode!r}, momentum={self.momentum}"


def _mean_over_ranks(log_z: Tensor) -> Tensor:
    """Under DDP, the log of the ranks' mean Z estimate, so every replica keeps the same normaliser."""
    if not dist.active():
        return log_z
    z = dist.all_reduce_(log_z.exp())
    return (z / dist.world_size()).log()
