"""A memory bank of L2-normalised features, one row per training sample.

The bank is the [N, D] table CRD-style objectives score anchors against. It is a persistent
buffer of an ``nn.Module``, so ``state_dict()`` carries it (and an update counter) through a
checkpoint and a resumed run sees the same bank.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scns import dist

ScoreMethod = Literal["gather", "matmul"]

#: Storage dtypes a bank may use, by config name.
BANK_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


class MemoryBank(nn.Module):
    """[N, D] table of unit-norm features with momentum updates.

    Args:
        n: number of rows (training-set size N).
        dim: feature size D.
        momentum: m in ``v <- m * v + (1 - m) * z``; 0 replaces a row, values near 1 move slowly.
        dtype: storage dtype of the table. float32 by default; bfloat16 halves the memory and,
            on CPUs with bf16 matrix units, speeds up the "matmul" scoring about 2x, at about three
            significant digits per score. Scores are computed in the bank's dtype and returned in
            the anchors' dtype; updates are computed in float64 and rounded once.
        generator: optional ``torch.Generator`` for a reproducible random initialisation.
        sync_distributed: when ``torch.distributed`` is initialised with more than one process,
            gather every rank's ``(index, z)`` before updating, so all replicas hold the same bank.
            Requires equal batch sizes on every rank (a sampler with ``drop_last``).

    Rows start as random directions on the unit sphere (normalised Gaussians).
    """

    memory: Tensor  # [N, D] buffer
    num_updates: Tensor  # int64 scalar buffer

    def __init__(
        self,
        n: int,
        dim: int,
        momentum: float = 0.5,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
        sync_distributed: bool = True,
    ) -> None:
        super().__init__()
        if n < 1 or dim < 1:
            raise ValueError(f"MemoryBank needs n >= 1 and dim >= 1, got n={n}, dim={dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
        self.momentum = float(momentum)
        self.sync_distributed = sync_distributed
        init = F.normalize(torch.randn(n, dim, generator=generator), dim=1)
        self.register_buffer("memory", init.to(dtype))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))

    @property
    def table(self) -> Tensor:
        """The [N, D] table (a detached view: change it only through :meth:`update`)."""
        return self.memory.detach()

    @property
    def weight(self) -> Tensor:
        """Alias of :attr:`table`."""
        return self.table

    @property
    def n(self) -> int:
        return self.memory.shape[0]

    @property
    def dim(self) -> int:
        return self.memory.shape[1]

    def extra_repr(self) -> str:
        return f"n={self.n}, dim={self.dim}, momentum={self.momentum}, dtype={self.memory.dtype}"

    def gather(self, idx: Tensor) -> Tensor:
        """Rows of the bank: idx int64 [...] -> [..., D] (no gradient into the bank)."""
        flat = idx.reshape(-1)
        return self.memory.index_select(0, flat).view(*idx.shape, self.dim)

    def choose_method(self, batch: int, k: int, elem_size: int = 4) -> ScoreMethod:
        """The cheaper exact scoring formulation, by the bytes each moves.

        gather-then-multiply reads and writes a [B, K, D] copy of the gathered rows; multiply-then-
        gather reads the [N, D] table once and writes a [B, N] score matrix.
        """
        bank_bytes = self.memory.element_size()
        gather_bytes = batch * k * self.dim * (bank_bytes + elem_size)
        matmul_bytes = self.n * self.dim * bank_bytes + batch * self.n * elem_size
        return "gather" if gather_bytes <= matmul_bytes else "matmul"

    def scores(self, z: Tensor, idx: Tensor, method: ScoreMethod | None = None) -> Tensor:
        """Dot products of anchors with bank rows.

        Args:
            z: [B, D] anchors (gradients flow into ``z`` only).
            idx: int64 [B, K] bank rows per anchor.
            method: "gather" (gather [B, K, D] rows, then a batched product) or "matmul"
                (``z @ table.T`` [B, N], then pick K columns per row); ``None`` picks the one
                that moves fewer bytes. Both are exact and give the same values and gradients.

        Returns:
            [B, K] scores ``z[b] . table[idx[b, k]]`` in ``z``'s dtype.
        """
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must be [B, {self.dim}], got {tuple(z.shape)}")
        if idx.dim() != 2 or idx.shape[0] != z.shape[0]:
            raise ValueError(f"idx must be [B, K] with B={z.shape[0]}, got {tuple(idx.shape)}")
        if method is None:
            method = self.choose_method(idx.shape[0], idx.shape[1], z.element_size())
        bank = self.memory.detach()
        if method == "gather":
            rows = self.gather(idx).to(z.dtype)
            return torch.bmm(rows, z.unsqueeze(2)).squeeze(2)
        if method == "matmul":
            # In the bank's dtype until after the pick: a bf16 bank keeps the big product in bf16.
            return F.linear(z.to(bank.dtype), bank).gather(1, idx).to(z.dtype)
        raise ValueError(f"unknown scoring method {method!r}; use 'gather', 'matmul' or None (auto)")

    @torch.no_grad()
    def fill(self, index: Tensor, z: Tensor) -> None:
        """Set the rows ``index`` [B] to ``normalise(z)`` [B, D] outright (no momentum, no gather
        across ranks): for filling the bank before training, a pass every rank makes in full."""
        if index.dim() != 1 or z.dim() != 2 or z.shape != (index.shape[0], self.dim):
            raise ValueError(
                f"fill expects index [B] and z [B, {self.dim}], got {tuple(index.shape)} and {tuple(z.shape)}"
            )
        rows = F.normalize(z.detach().to(torch.float64), dim=1)
        self.memory.index_copy_(0, index, rows.to(self.memory.dtype))

    @torch.no_grad()
    def update(self, index: Tensor, z: Tensor) -> None:
        """Momentum update ``v <- normalise(m * v + (1 - m) * z)`` of the rows ``index``.

        Duplicate ids in ``index`` are resolved deterministically: their ``z`` are averaged first
        and the row takes one momentum step towards that mean. No host synchronisation.

        Args:
            index: int64 [B] rows to update.
            z: [B, D] new features (detached here; need not be normalised).
        """
        if index.dim() != 1 or z.dim() != 2 or z.shape != (index.shape[0], self.dim):
            raise ValueError(
                f"update expects index [B] and z [B, {self.dim}], got {tuple(index.shape)} and {tuple(z.shape)}"
            )
        z = z.detach()
        if self.sync_distributed and dist.active():
            index, z = dist.all_gather_cat(index), dist.all_gather_cat(z)
        if index.numel() == 0:
            return
        mean_z = _mean_by_id(index, z.to(torch.float64))
        old = self.memory.index_select(0, index).to(torch.float64)
        new = F.normalize(self.momentum * old + (1.0 - self.momentum) * mean_z, dim=1)
        # Duplicates carry identical rows, so the write order cannot matter.
        self.memory.index_copy_(0, index, new.to(self.memory.dtype))
        self.num_updates += 1


def _mean_by_id(index: Tensor, z: Tensor) -> Tensor:
    """For each position i, the mean of z[j] over all j with index[j] == index[i]: [B, D].

    Sort-based (stable sort + prefix sums), deterministic on every device and free of host syncs.
    """
    order = torch.sort(index, stable=True).indices
    sorted_ids = index[order]
    b = index.shape[0]
    start = torch.ones(b, dtype=torch.bool, device=index.device)
    start[1:] = sorted_ids[1:] != sorted_ids[:-1]
    group = torch.cumsum(start.long(), 0) - 1  # group id per sorted position
    pos = torch.arange(b, device=index.device)
    first = torch.zeros(b, dtype=torch.long, device=index.device).scatter_reduce(
        0, group, pos, reduce="amin", include_self=False
    )
    last = torch.zeros(b, dtype=torch.long, device=index.device).scatter_reduce(
        0, group, pos, reduce="amax", include_self=False
    )
    prefix = torch.cat([z.new_zeros(1, z.shape[1]), torch.cumsum(z[order], 0)])
    g_first, g_last = first[group], last[group]
    means_sorted = (prefix[g_last + 1] - prefix[g_first]) / (g_last - g_first + 1).unsqueeze(1).to(z.dtype)
    out = torch.empty_like(z)
    out[order] = means_sorted
    return out
