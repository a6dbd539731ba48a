"""Diagnostics of drawn negatives that every sampler shares (vectorised, no host sync)."""

from __future__ import annotations

import torch
from torch import Tensor


def duplicate_rate(neg_idx: Tensor) -> Tensor:
    """Share of repeated draws: ``1 - mean over anchors of (distinct ids / K)``.

    Args:
        neg_idx: integer [B, K] negative ids (B, K >= 1).

    Returns:
        float32 scalar on ``neg_idx``'s device: 0 when no anchor drew an id twice, ``1 - 1 / K``
        when every anchor drew one id K times.
    """
    if neg_idx.dim() != 2 or neg_idx.shape[0] < 1 or neg_idx.shape[1] < 1:
        raise ValueError(f"neg_idx must be [B, K] with B, K >= 1, got {tuple(neg_idx.shape)}")
    if neg_idx.dtype.is_floating_point:
        raise ValueError(f"neg_idx must hold integer ids, got {neg_idx.dtype}")
    ordered = neg_idx.sort(dim=1).values
    distinct = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(1)  # [B]
    return 1 - distinct.float().mean() / neg_idx.shape[1]


def mass_share(pos: Tensor, neg: Tensor, selected: Tensor, temperature: float) -> Tensor:
    """Mean over anchors of the softmax mass that the ``selected`` negatives hold.

    The softmax runs over ``[pos, neg_1 .. neg_K] / temperature`` per anchor, as in InfoNCE;
    ``-inf`` scores (masked pseudo-negatives) hold no mass.

    Args:
        pos: [B] positive scores. neg: [B, K] negative scores (real, pseudo, or both).
        selected: bool [B, K] (or broadcastable, e.g. [K]) marking the negatives counted.
        temperature: T > 0.

    Returns:
        float32 scalar in [0, 1], detached.
    """
    if pos.dim() != 1 or neg.dim() != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(f"expected pos [B] and neg [B, K], got {tuple(pos.shape)} and {tuple(neg.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    with torch.no_grad():
        logits = torch.cat([pos.unsqueeze(1), neg], dim=1).float() / temperature
        probs = torch.softmax(logits, dim=1)[:, 1:]
        return (probs * selected.to(probs.dtype)).sum(1).mean()
