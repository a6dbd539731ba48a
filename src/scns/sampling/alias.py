"""Walker/Vose alias tables: O(1) draws from many small categorical distributions at once."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from scns.sampling.class_index import BELOW_ONE


def build_alias(probs: Tensor) -> tuple[Tensor, Tensor]:
    """Alias tables for each row of probs [R, M] (rows sum to 1; zeros allowed).

    Returns ``accept`` float64 [R, M] and ``alias`` int64 [R, M] on ``probs``' device: draw a
    column i uniformly, keep it with probability ``accept[r, i]``, else take ``alias[r, i]``.
    Zero-probability columns get ``accept = 0`` and are never returned. Built once with a
    Python loop per row (R * M steps; about a second for a 1000 x 1000 table).
    """
    p = probs.detach().to("cpu", torch.float64).numpy()
    rows, m = p.shape
    accept = np.ones((rows, m))
    alias = np.tile(np.arange(m), (rows, 1))
    for r in range(rows):
        scaled = p[r] * m
        small = [i for i in range(m) if scaled[i] < 1.0]
        large = [i for i in range(m) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large[-1]
            accept[r, s], alias[r, s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            if scaled[g] < 1.0:
                small.append(large.pop())
        # Leftovers hold scaled values within rounding of 1: keep them (accept stays 1).
        accept[r, p[r] == 0] = 0.0  # never keep a zero-probability column, whatever rounding did
    dev = probs.device
    return torch.from_numpy(accept).to(dev), torch.from_numpy(alias).to(dev)


def draw_alias(accept: Tensor, alias: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """k draws per row from alias tables accept, alias [B, M] -> int64 [B, k] column ids.

    One float64 uniform per draw: x = u * M gives the column floor(x) and the coin x - floor(x),
    which is uniform on [0, 1) given the column, at 53 - log2(M) bits of resolution.
    """
    b, m = accept.shape
    x = torch.rand((b, k), dtype=torch.float64, generator=generator, device=accept.device)
    x.mul_(m * BELOW_ONE)
    col = x.long()
    coin = x.sub_(col)
    return torch.where(coin < accept.gather(1, col), col, alias.gather(1, col))
