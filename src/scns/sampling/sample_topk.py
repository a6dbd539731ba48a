"""Negatives from each sample's nearest neighbours of other classes (a refreshed kNN table)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from scns.sampling.base import SamplerBase
from scns.sampling.class_index import ClassIndex, uniform_below
from scns.sampling.registry import SAMPLERS

Backend = Literal["torch", "faiss"]


@SAMPLERS.register("sample_topk")
class SampleTopKSampler(SamplerBase):
    """For every training sample, its ``top_k`` most cosine-similar samples of other classes.

    Negatives are drawn uniformly, with replacement, from the anchor's table row. The table is
    built by :meth:`refresh` from features [N, D] (the memory bank or a teacher's features);
    the engine calls it every ``refresh_every`` epochs (see :meth:`should_refresh`).

    Args:
        labels: int64 [N] training labels.
        top_k: neighbours kept per sample; at most N - (largest class size).
        refresh_every: epochs between refreshes (>= 1).
        chunk_size: rows scored per step of the build; peak extra memory is about
            ``chunk_size * N`` floats (plus the [N, top_k] table), never N x N.
        backend: "torch" (exact, chunked) or "faiss" (exact inner-product index; needs
            ``pip install faiss-cpu``); both give the same table up to ties.
        num_classes: C; default ``labels.max() + 1``.

    Attributes:
        table: int32 [N, top_k] neighbour ids, most similar first (``None`` before refresh).
    """

    def __init__(
        self,
        labels: Tensor,
        top_k: int,
        refresh_every: int = 1,
        chunk_size: int = 1024,
        backend: Backend = "torch",
        num_classes: int | None = None,
    ) -> None:
        self.index = ClassIndex(labels, num_classes)
        self.index.require_negatives()
        allowed = self.index.n - int(self.index.counts.max())
        if not 1 <= top_k <= allowed:
            raise ValueError(
                f"top_k must be in [1, {allowed}] (N minus the largest class size: the fewest "
                f"other-class samples any anchor has), got {top_k}"
            )
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1 epoch, got {refresh_every}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if backend not in ("torch", "faiss"):
            raise ValueError(f"backend must be 'torch' or 'faiss', got {backend!r}")
        self.top_k, self.refresh_every, self.chunk_size, self.backend = (
            int(top_k),
            int(refresh_every),
            int(chunk_size),
            backend,
        )
        self.table: Tensor | None = None

    def should_refresh(self, epoch: int) -> bool:
        return self.table is None or epoch % self.refresh_every == 0

    @torch.no_grad()
    def refresh(self, features: Tensor) -> None:
        """Rebuild the table from features [N, D] (cosine similarity; rows are normalised here)."""
        if features.dim() != 2 or features.shape[0] != self.index.n:
            raise ValueError(f"features must be [N={self.index.n}, D], got {tuple(features.shape)}")
        feats = F.normalize(features.detach().to(self.index.device), dim=1)
        if self.backend == "faiss":
            table = knn_other_class_faiss(feats, self.index.labels, self.top_k, int(self.index.counts.max()))
        else:
            table = knn_other_class(feats, self.index.labels, self.top_k, self.chunk_size)
        self.table = table.to(torch.int32)

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        if self.table is None:
            raise RuntimeError(
                "SampleTopKSampler has no table yet: call refresh(features [N, D]) before sample()"
            )
        cols = uniform_below(torch.tensor(self.top_k, device=index.device), (index.shape[0], k), generator)
        return self.table.index_select(0, index).gather(1, cols).long()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.table is None else {"table": self.table}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"table"}
        if unknown:
            raise ValueError(f"unexpected SampleTopKSampler state keys {sorted(unknown)}")
        table = state.get("table")
        if table is not None and tuple(table.shape) != (self.index.n, self.top_k):
            raise ValueError(
                f"table shape {tuple(table.shape)} does not match this sampler's [N={self.index.n}, top_k={self.top_k}]"
            )
        self.table = None if table is None else table.to(device=self.index.device, dtype=torch.int32)

    def describe(self) -> str:
        state = "built" if self.table is not None else "not built"
        return (
            f"sample top-{self.top_k} ({self.backend}, refresh every {self.refresh_every} epoch(s), table {state}), "
            f"N={self.index.n}"
        )


def knn_other_class(features: Tensor, labels: Tensor, top_k: int, chunk_size: int = 1024) -> Tensor:
    """Exact top-k inner-product neighbours of other classes, in row chunks.

    Rows and columns are visited in class-sorted order, so each row's own class is one
    contiguous column block, masked with a slice fill (no [chunk, N] comparison).

    Args:
        features: [N, D] (normalise first for cosine similarity).
        labels: int64 [N].
        top_k: neighbours per row (each row needs at least ``top_k`` other-class samples).
        chunk_size: rows per chunk; memory is O(chunk_size * N + N * top_k).

    Returns:
        int64 [N, top_k] neighbour ids, most similar first.
    """
    index = ClassIndex(labels)
    ids, bounds = index.ids, index.offsets.tolist()
    sorted_labels = labels[ids].tolist()
    feats = features[ids]  # class-sorted rows
    out = torch.empty((features.shape[0], top_k), dtype=torch.long, device=features.device)
    for start in range(0, features.shape[0], chunk_size):
        stop = min(start + chunk_size, features.shape[0])
        sims = feats[start:stop] @ feats.T
        for c in range(sorted_labels[start], sorted_labels[stop - 1] + 1):
            r0, r1 = max(bounds[c], start) - start, min(bounds[c + 1], stop) - start
            if r1 > r0:
                sims[r0:r1, bounds[c] : bounds[c + 1]] = float("-inf")
        out[ids[start:stop]] = ids[topk_indices(sims, top_k)]
    return out


def topk_indices(values: Tensor, k: int) -> Tensor:
    """``values.topk(k, dim=1).indices`` for [R, n] values (largest first), faster for large k.

    Exact threshold pre-filter: split each row into 2k blocks of equal width; the k-th largest
    block maximum tau is at most the row's k-th largest value (k blocks reach it), so only the
    entries >= tau (typically under 1.5 k) go through the final top-k. Falls back to a plain
    top-k for narrow rows or when some row's bound is -inf (too few finite blocks).
    Equal values may come out in another order than ``torch.topk``'s (ties are unordered there too).
    """
    rows, n = values.shape
    blocks = 2 * k
    width = n // blocks  # columns past blocks * width join no block: the bound still holds
    if width < 4:
        return values.topk(k, dim=1).indices
    block_max = values[:, : blocks * width].unflatten(1, (blocks, width)).amax(2)
    tau = block_max.topk(k, dim=1, sorted=False).values.amin(1, keepdim=True)  # [R, 1]
    if not bool(torch.isfinite(tau).all()):
        return values.topk(k, dim=1).indices
    flat_pos = (values >= tau).view(-1).nonzero().squeeze(1)  # row-major, so rows stay grouped
    row = flat_pos // n
    counts = torch.bincount(row, minlength=rows)
    width_c = int(counts.max())
    slot = (
        row * width_c
        + torch.arange(flat_pos.numel(), device=values.device)
        - (torch.cumsum(counts, 0) - counts)[row]
    )
    cand = values.new_full((rows * width_c,), float("-inf"))
    cand.index_copy_(0, slot, values.reshape(-1).gather(0, flat_pos))
    cand_col = torch.zeros(rows * width_c, dtype=torch.long, device=values.device)
    cand_col.index_copy_(0, slot, flat_pos - row * n)
    best = cand.view(rows, width_c).topk(k, dim=1).indices
    return cand_col.view(rows, width_c).gather(1, best)


def knn_other_class_faiss(features: Tensor, labels: Tensor, top_k: int, max_class_size: int) -> Tensor:
    """:func:`knn_other_class` through a faiss exact inner-product index (CPU).

    Fetches ``top_k + max_class_size`` neighbours, enough that ``top_k`` of them are of other
    classes, then drops the same-class ones.
    """
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "the faiss backend needs faiss: install it with `pip install faiss-cpu`, or use backend='torch'"
        ) from None
    feats = features.detach().to("cpu", torch.float32).contiguous().numpy()
    index = faiss.IndexFlatIP(feats.shape[1])
    index.add(feats)
    fetch = min(top_k + max_class_size, feats.shape[0])
    sims, ids = index.search(feats, fetch)
    sims_t, ids_t = torch.from_numpy(sims), torch.from_numpy(ids).long()
    labels_cpu = labels.cpu()
    sims_t.masked_fill_(labels_cpu[ids_t] == labels_cpu[:, None], float("-inf"))
    keep = sims_t.topk(top_k, dim=1).indices
    return ids_t.gather(1, keep).to(features.device)
