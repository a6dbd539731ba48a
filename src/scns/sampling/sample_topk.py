"""Negatives from each sample's nearest neighbours of other classes (a refreshed kNN table)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scns.sampling.base import SamplerBase, SamplerOptions
from scns.sampling.class_index import ClassIndex, uniform_below
from scns.sampling.registry import SAMPLERS

Backend = Literal["torch", "faiss"]
FaissIndex = Literal["flat", "ivf"]


@dataclass(frozen=True)
class SampleTopKOptions(SamplerOptions):
    """Options of :class:`SampleTopKSampler` (see its docstring). ``top_k`` counts samples here."""

    top_k: int = 10
    refresh_every: int = 5
    knn_backend: Backend = "torch"
    knn_index: FaissIndex = "flat"
    knn_nprobe: int = 32
    skip_nearest: float = 0.0
    with_replacement: bool = False

    def __post_init__(self) -> None:
        for key in ("top_k", "refresh_every", "knn_nprobe"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be > 0, got {value!r}")
        if self.knn_backend not in ("torch", "faiss"):
            raise ValueError(f"knn_backend must be 'torch' or 'faiss', got {self.knn_backend!r}")
        if self.knn_index not in ("flat", "ivf"):
            raise ValueError(f"knn_index must be 'flat' or 'ivf', got {self.knn_index!r}")
        if self.knn_index == "ivf" and self.knn_backend != "faiss":
            raise ValueError("knn_index=ivf needs knn_backend=faiss (pip install faiss-cpu)")
        if self.knn_backend == "faiss" and importlib.util.find_spec("faiss") is None:
            raise ValueError(
                "knn_backend=faiss needs faiss, which is not installed: pip install faiss-cpu (or "
                "faiss-gpu), or use --knn-backend torch"
            )
        if not 0.0 <= self.skip_nearest < 1.0:
            raise ValueError(f"skip_nearest must be in [0, 1), got {self.skip_nearest}")


@SAMPLERS.register("sample_topk")
class SampleTopKSampler(SamplerBase):
    """For every training sample, its ``top_k`` most cosine-similar samples of other classes.

    The table is built by :meth:`refresh` from any features [N, D] (the memory bank in the
    contrasted space, a teacher's features, ...); the engine calls it every ``refresh_every``
    epochs (see :meth:`should_refresh`). Each anchor draws from the *usable* part of its row,
    columns ``[ceil(skip_nearest * top_k), top_k)``, of length ``L = top_k - ceil(skip_nearest * top_k)``:

    - ``k <= L``: k distinct entries, a uniformly random subset in random order (no duplicates);
    - ``k > L``: every entry ``floor(k / L)`` or ``ceil(k / L)`` times (the ``k mod L`` extra
      entries a uniformly random subset), a random permutation of the row read cyclically (see
      :func:`spread_columns`);
    - ``with_replacement=True``: the old i.i.d. uniform draws with replacement (duplicates even
      when ``k <= L``), kept so earlier grids can be rerun.

    In every mode each draw's marginal is uniform over the usable row, so
    :meth:`log_prob` is ``-log L`` for an id in the anchor's usable row and ``-inf`` otherwise.

    Args:
        labels: int64 [N] training labels.
        top_k: neighbours kept per sample; at most N - (largest class size).
        refresh_every: epochs between refreshes (>= 1).
        chunk_size: rows scored per step of the build; peak extra memory is about
            ``chunk_size * N`` floats (plus the [N, top_k] table), never N x N.
        backend: "torch" (exact, chunked) or "faiss" (needs ``pip install faiss-cpu``); with
            ``index="flat"`` both give the same table up to ties.
        num_classes: C; default ``labels.max() + 1``.
        index: faiss index, "flat" (exact) or "ivf" (approximate inverted lists, for N in the
            millions; see :func:`knn_other_class_faiss`). Ignored by the torch backend.
        nlist: IVF cells (default about ``4 * sqrt(N)``). nprobe: IVF cells scanned per query.
        skip_nearest: fraction in [0, 1) of each row's nearest neighbours never drawn (a
            false-negative guard: the closest other-class samples are often near-duplicates of
            the anchor's class). At least one column must stay usable.
        with_replacement: draw i.i.d. with replacement (the behaviour before draws without
            replacement existed); default False.

    Attributes:
        table: int32 [N, top_k] neighbour ids, most similar first (``None`` before refresh).
        usable: L, the number of columns draws come from.

    Memory: the table, ``4 * N * top_k`` bytes (:meth:`log_prob` sorts only the rows it is asked about).
    """

    Options = SampleTopKOptions
    refreshes_from_features = True

    @classmethod
    def from_options(
        cls,
        labels: Tensor,
        options: SamplerOptions,
        *,
        similarity: Tensor | None = None,
        build: Callable[[str], SamplerBase] | None = None,
    ) -> SampleTopKSampler:
        assert isinstance(options, SampleTopKOptions)
        return cls(
            labels,
            options.top_k,
            refresh_every=options.refresh_every,
            backend=options.knn_backend,
            index=options.knn_index,
            nprobe=options.knn_nprobe,
            skip_nearest=options.skip_nearest,
            with_replacement=options.with_replacement,
        )

    def __init__(
        self,
        labels: Tensor,
        top_k: int,
        refresh_every: int = 1,
        chunk_size: int = 1024,
        backend: Backend = "torch",
        num_classes: int | None = None,
        index: FaissIndex = "flat",
        nlist: int | None = None,
        nprobe: int = 32,
        skip_nearest: float = 0.0,
        with_replacement: bool = False,
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
        if index not in ("flat", "ivf"):
            raise ValueError(f"index must be 'flat' or 'ivf', got {index!r}")
        if nlist is not None and not 1 <= nlist <= self.index.n:
            raise ValueError(f"nlist must be in [1, N={self.index.n}], got {nlist}")
        if nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        self.skip = skipped_columns(skip_nearest, int(top_k))
        self.faiss_index, self.nlist, self.nprobe = index, nlist, int(nprobe)
        self.top_k, self.refresh_every, self.chunk_size, self.backend = (
            int(top_k),
            int(refresh_every),
            int(chunk_size),
            backend,
        )
        self.skip_nearest, self.with_replacement = float(skip_nearest), bool(with_replacement)
        self.table: Tensor | None = None

    @property
    def usable(self) -> int:
        """L: the columns ``[skip, top_k)`` of each row that draws come from."""
        return self.top_k - self.skip

    def should_refresh(self, epoch: int) -> bool:
        return self.table is None or epoch % self.refresh_every == 0

    @torch.no_grad()
    def refresh(self, features: Tensor) -> None:
        """Rebuild the table from features [N, D] of any float dtype (cosine similarity; rows are
        normalised here, and bfloat16/float16 features are ranked in float32).

        Raises:
            ValueError: on a wrong shape, or when some row is all zero or not finite (a bank
                that is not filled yet has no neighbours to rank: fill it first).
        """
        if features.dim() != 2 or features.shape[0] != self.index.n:
            raise ValueError(f"features must be [N={self.index.n}, D], got {tuple(features.shape)}")
        if not features.dtype.is_floating_point:
            raise ValueError(f"features must be a float tensor, got {features.dtype}")
        check_rankable(features.detach())
        if self.backend == "faiss":  # normalises its own class-sorted copy: one N x D copy fewer
            table = knn_other_class_faiss(
                features,
                self.index.labels,
                self.top_k,
                self.faiss_index,
                self.nlist,
                self.nprobe,
                normalize=True,
            )
        else:
            feats = features.detach().to(self.index.device)
            if feats.dtype not in (torch.float32, torch.float64):  # a bf16/fp16 bank: rank in float32
                feats = feats.float()
            table = knn_other_class(F.normalize(feats, dim=1), self.index.labels, self.top_k, self.chunk_size)
        self._set_table(table)

    def _set_table(self, table: Tensor) -> None:
        self.table = table.to(device=self.index.device, dtype=torch.int32)

    def _require_table(self) -> Tensor:
        if self.table is None:
            raise RuntimeError(
                "SampleTopKSampler has no table yet: call refresh(features [N, D]) before sample()"
            )
        return self.table

    def _sample(self, index: Tensor, labels: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        rows = self._require_table().index_select(0, index)[:, self.skip :]  # [B, L]
        if self.with_replacement:
            cols = uniform_below(
                torch.tensor(self.usable, device=index.device), (index.shape[0], k), generator
            )
        else:
            cols = spread_columns(index.shape[0], self.usable, k, generator, index.device)
        return rows.gather(1, cols).long()

    @torch.no_grad()
    def log_prob(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor:
        """log q(id | anchor) of any ids: index, labels [B], neg_idx [B, K] -> float32 [B, K].

        ``-log L`` where ``neg_idx`` is in the anchor's usable row (the marginal of every draw
        mode), ``-inf`` elsewhere; ids drawn by another sampler are answered the same way (a
        binary search in the anchors' usable rows, sorted per call: [B, L], so no copy of the
        whole table is kept for a correction most runs never ask for).
        """
        check_log_prob_args(index, labels, neg_idx)
        table = self._require_table()
        rows = table.index_select(0, index.long())[:, self.skip :].sort(dim=1).values  # [B, L] ascending
        ids = neg_idx.clamp(-1, self.index.n).to(torch.int32)  # out-of-range ids stay out of the row
        pos = torch.searchsorted(rows, ids).clamp_max_(self.usable - 1)
        hit = rows.gather(1, pos) == ids
        inside = torch.tensor(-math.log(self.usable), dtype=torch.float32, device=hit.device)
        return torch.where(hit, inside, torch.tensor(float("-inf"), device=hit.device))

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
        if table is None:
            self.table = None
        else:
            self._set_table(table)

    def describe(self) -> str:
        state = "built" if self.table is not None else "not built"
        backend = self.backend if self.backend == "torch" else f"faiss {self.faiss_index}"
        skip = f", skip nearest {self.skip}" if self.skip else ""
        draws = "with replacement" if self.with_replacement else "without replacement"
        return (
            f"sample top-{self.top_k} ({backend}{skip}, {draws}, refresh every {self.refresh_every} "
            f"epoch(s), table {state}), N={self.index.n}"
        )


def skipped_columns(skip_nearest: float, top_k: int) -> int:
    """``ceil(skip_nearest * top_k)``: leading table columns a row never draws from.

    Raises ValueError unless ``skip_nearest`` is in [0, 1) and leaves at least one column.
    """
    if not 0.0 <= skip_nearest < 1.0:
        raise ValueError(f"skip_nearest must be a fraction in [0, 1), got {skip_nearest}")
    skip = math.ceil(round(skip_nearest * top_k, 9))  # round: 0.3 * 10 is 3.0000000000000004
    if skip >= top_k:
        raise ValueError(
            f"skip_nearest={skip_nearest} skips all {top_k} neighbours (ceil(skip_nearest * top_k) = "
            f"{skip}); lower it below {(top_k - 1) / top_k:.4g} or raise top_k"
        )
    return skip


def spread_columns(
    rows: int,
    length: int,
    k: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Column positions for k draws from each of ``rows`` rows of ``length`` entries, spread as
    evenly as possible: int64 [rows, k] in [0, length).

    Each row takes one uniformly random permutation p of its columns (the order of float64
    uniform keys) and reads it cyclically: position j holds ``p[j % length]``. So

    - ``k <= length``: k distinct columns, a uniformly random subset in random order;
    - ``k > length``: every column ``k // length`` times and a uniformly random subset of
      ``k % length`` columns (the first ones of p) once more;
    - every position's marginal is uniform over the row, and every prefix of the k positions is
      itself spread evenly (no column twice within any ``length`` consecutive positions).

    Cost: one sort of [rows, length] keys (a top-k when ``k < length``), not of [rows, k].
    """
    keys = torch.rand((rows, length), dtype=torch.float64, generator=generator, device=device)
    perm = keys.topk(min(k, length), dim=1).indices  # the k (or all) largest keys, in key order
    if k <= length:
        return perm
    return perm.gather(1, (torch.arange(k, device=perm.device) % length).expand(rows, -1))


def check_rankable(features: Tensor) -> None:
    """Raise ValueError naming the rows of features [N, D] that cannot be ranked by cosine:
    all-zero rows (e.g. a bank allocated but not filled yet) and rows with NaN or inf."""
    wide = torch.promote_types(features.dtype, torch.float32)  # bf16/fp16 summed in float32, no copy
    norms = torch.linalg.vector_norm(features, dim=1, dtype=wide)
    zero, broken = norms == 0, ~torch.isfinite(norms)
    n_zero, n_broken = int(zero.sum()), int(broken.sum())
    if n_zero or n_broken:
        first = torch.nonzero(zero | broken).flatten()[:5].tolist()
        raise ValueError(
            f"cannot build a kNN table: {n_zero} all-zero and {n_broken} non-finite feature row(s) "
            f"of {features.shape[0]} (first rows {first}); cosine similarity ranks nothing there. "
            "Refresh from a filled bank (prefill it, or refresh after its rows have been updated)."
        )


def check_log_prob_args(index: Tensor, labels: Tensor, neg_idx: Tensor) -> None:
    """Raise ValueError unless index, labels are integer [B] and neg_idx integer [B, K]."""
    if (
        index.dim() != 1
        or labels.shape != index.shape
        or neg_idx.dim() != 2
        or neg_idx.shape[0] != index.shape[0]
    ):
        raise ValueError(
            "log_prob expects index [B], labels [B] and neg_idx [B, K], got "
            f"{tuple(index.shape)}, {tuple(labels.shape)} and {tuple(neg_idx.shape)}"
        )
    if any(t.dtype.is_floating_point or t.dtype == torch.bool for t in (index, labels, neg_idx)):
        raise ValueError(f"log_prob needs integer ids, got {index.dtype}, {labels.dtype} and {neg_idx.dtype}")


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


def knn_other_class_faiss(
    features: Tensor,
    labels: Tensor,
    top_k: int,
    index: FaissIndex = "flat",
    nlist: int | None = None,
    nprobe: int = 32,
    query_chunk: int = 4096,
    seed: int = 0,
    normalize: bool = False,
) -> Tensor:
    """:func:`knn_other_class` through a faiss inner-product index (CPU), exact or approximate.

    Rows are added to the index in class-sorted order, so each class is one contiguous id range;
    every class's queries are searched with a selector that excludes that range, so faiss returns
    ``top_k`` other-class neighbours directly (nothing fetched and thrown away).

    Args:
        features: [N, D], any float dtype (searched in float32).
        labels: int64 [N]; each row needs at least ``top_k`` other-class samples.
        index: "flat" (exact, O(N^2 D) work) or "ivf" (inverted lists: k-means into ``nlist``
            cells, each query scans its ``nprobe`` nearest cells; approximate, roughly
            ``nprobe / nlist`` of the exact work). For N in the millions on CPU only "ivf" is practical.
        nlist: IVF cells; default the power of two nearest ``4 * sqrt(N)``.
        nprobe: IVF cells scanned per query. A row whose scanned cells hold fewer than ``top_k``
            other-class samples is searched again with twice the cells, up to all of them (exact).
        query_chunk: queries per search call; bounds the result buffers to ``query_chunk * top_k``.
        seed: seeds the k-means training subsample and initialisation (IVF).
        normalize: L2-normalise the rows (cosine similarity), in place on the sorted copy.

    Memory beyond the input: a class-sorted float32 copy of the features (the queries), the
    index's own copy (plus int64 ids for IVF) and the int32 [N, top_k] result, written in place:
    ``4 * N * (2 * D + top_k)`` bytes, plus the IVF training sample (``64 * nlist`` rows).

    Returns:
        int32 [N, top_k] neighbour ids, most similar first.
    """
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "the faiss backend needs faiss: install it with `pip install faiss-cpu`, or use backend='torch'"
        ) from None
    if index not in ("flat", "ivf"):
        raise ValueError(f"faiss index must be 'flat' or 'ivf', got {index!r}")
    classes = ClassIndex(labels)
    n, dim = features.shape
    order = classes.ids.cpu()
    bounds = classes.offsets.tolist()
    sorted_t = features.detach().to("cpu", torch.float32)[order]
    if normalize:
        sorted_t.div_(sorted_t.norm(dim=1, keepdim=True).clamp_min_(1e-12))
    sorted_feats = sorted_t.numpy()
    faiss_index: faiss.Index
    if index == "flat":
        faiss_index = faiss.IndexFlatIP(dim)
        cells = 1
    else:
        cells = nlist or default_nlist(n)
        if not 1 <= cells <= n:
            raise ValueError(f"nlist must be in [1, N={n}], got {cells}")
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = seed
        # 64 points per cell trains k-means well (faiss warns under 39); more only costs time
        train_rows = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: 64 * cells]
        ivf.train(sorted_feats[train_rows.sort().values.numpy()])
        faiss_index = ivf
    faiss_index.add(sorted_feats)

    order_np = order.numpy()
    table = np.empty((n, top_k), dtype=np.int32)  # int32 ids: half the memory of int64 at N in the millions
    for c in range(classes.num_classes):
        lo, hi = bounds[c], bounds[c + 1]
        for start in range(lo, hi, query_chunk):
            stop = min(start + query_chunk, hi)
            found = _search_excluding(
                faiss, faiss_index, sorted_feats[start:stop], top_k, (lo, hi), nprobe, cells
            )
            if (
                found < 0
            ).any():  # unreachable when every row has top_k other-class samples (the sampler checks)
                raise RuntimeError(
                    f"faiss found fewer than top_k={top_k} other-class neighbours for class {c}"
                )
            table[order_np[start:stop]] = order_np[found]  # class-sorted positions -> sample ids
    return torch.from_numpy(table).to(features.device)


def _search_excluding(
    faiss: Any,
    index: Any,
    queries: np.ndarray,
    top_k: int,
    excluded: tuple[int, int],
    nprobe: int,
    cells: int,
) -> np.ndarray:
    """[q, top_k] ids of ``queries``' nearest rows outside ``excluded`` (a [lo, hi) id range)."""
    own_class = faiss.IDSelectorRange(*excluded)  # kept referenced: the Not selector holds a raw pointer
    selector = faiss.IDSelectorNot(own_class)
    if cells == 1:
        return index.search(queries, top_k, params=faiss.SearchParameters(sel=selector))[1]
    probe = min(nprobe, cells)
    ids = index.search(queries, top_k, params=faiss.SearchParametersIVF(sel=selector, nprobe=probe))[1]
    short = np.flatnonzero((ids < 0).any(axis=1))
    while short.size and probe < cells:
        probe = min(2 * probe, cells)
        params = faiss.SearchParametersIVF(sel=selector, nprobe=probe)
        ids[short] = index.search(queries[short], top_k, params=params)[1]
        short = short[(ids[short] < 0).any(axis=1)]
    return ids


def default_nlist(n: int) -> int:
    """IVF cell count for N rows: the power of two nearest ``4 * sqrt(N)`` (faiss's usual range)."""
    return max(1, 2 ** round(math.log2(4 * math.sqrt(n))))
