"""Where a step's negatives come from: a configured sampler wrapped for the objectives.

``NegativeSource`` owns the sampler, keeps its tables in the objective's ``state_dict`` (so a resumed
run samples from the same kNN table), falls back to uniform negatives while a feature-dependent
table (sample-level SCNS) has not been built yet, and measures what it drew.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from scns.sampling import SamplerBase, UniformSampler

HIST_BINS = 40  # histogram of anchor-negative cosine over [-1, 1]


class DeviceTimer:
    """Accumulates the time spent inside ``with timer:`` blocks without syncing the device per call.

    On CUDA it records event pairs and reads them once in :meth:`total`; on CPU it uses the clock.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._seconds = 0.0
        self._events: list[tuple[Any, Any]] = []
        self._device: torch.device | None = None

    def bind(self, device: torch.device) -> DeviceTimer:
        self._device = device
        return self

    def __enter__(self) -> DeviceTimer:
        if self._device is not None and self._device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            start.record()
            self._events.append((start, None))
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._events and self._events[-1][1] is None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events[-1] = (self._events[-1][0], end)
        else:
            self._seconds += time.perf_counter() - self._t0

    def total(self) -> float:
        """Seconds accumulated since the last reset (syncs once on CUDA)."""
        if self._events:
            self._events[-1][1].synchronize()
            self._seconds += sum(a.elapsed_time(b) for a, b in self._events) / 1000.0
            self._events = []
        return self._seconds


class NegativeSource(nn.Module):
    """Draws ``k`` negative sample ids per anchor.

    Args:
        sampler: the configured sampler (uniform, class_topk, sample_topk, mixture).
        labels: int64 [N] training labels (on the training device).
        k: negatives per anchor.
        topk_classes: optional bool [C, C] mask, row c marking the classes most similar to c;
            used only for the logged share of negatives drawn from them.
        log_negatives: how many of each anchor's negatives enter the logged hardness histogram.
    """

    def __init__(
        self,
        sampler: SamplerBase,
        labels: Tensor,
        k: int,
        topk_classes: Tensor | None = None,
        log_negatives: int = 2048,
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.k = int(k)
        self.register_buffer("labels", labels.long(), persistent=False)
        self.fallback = UniformSampler(labels)
        self.register_buffer("topk_classes", topk_classes, persistent=False)
        self.ready = not sampler.should_refresh(0) or not _needs_features(sampler)
        self.log_negatives = int(log_negatives)
        self.register_buffer("hardness_hist", torch.zeros(HIST_BINS), persistent=False)
        self.timer = DeviceTimer()
        # table builds are reported with the next epoch_stats, so one made at construction
        # (distillation builds its kNN table from the teacher before training) lands in epoch 0
        self.refresh_timer = DeviceTimer()

    def start_epoch(self) -> None:
        """Reset the per-epoch hardness histogram and sampling clock."""
        self.hardness_hist.zero_()
        self.timer.reset()
        self.timer.bind(self.labels.device)

    @torch.no_grad()
    def observe(self, neg_scores: Tensor) -> None:
        """Add anchor-negative cosines [B, K] (first ``log_negatives`` columns) to the histogram."""
        sample = neg_scores[:, : self.log_negatives].float()
        self.hardness_hist += torch.histc(sample, bins=HIST_BINS, min=-1.0, max=1.0)

    def epoch_stats(self) -> dict[str, Any]:
        """Per-epoch log entries: seconds spent sampling, seconds spent (re)building sampler tables
        since the last call, and the hardness histogram counts."""
        refresh_s = self.refresh_timer.total()
        self.refresh_timer.reset()
        return {
            "sampling_time_s": self.timer.total(),
            "refresh_time_s": refresh_s,
            "neg_sim_hist": self.hardness_hist.tolist(),
        }

    def needs_refresh(self, epoch: int) -> bool:
        """Whether a feature-dependent table should be (re)built before ``epoch``."""
        return _needs_features(self.sampler) and self.sampler.should_refresh(epoch)

    def refresh(self, features: Tensor) -> None:
        """Rebuild the sampler's tables from features [N, D].

        In a distributed run rank 0 builds the tables and broadcasts them, so every rank samples
        from the same table.
        """
        with self.refresh_timer.bind(self.labels.device):
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                if dist.get_rank() == 0:
                    self.sampler.refresh(features)
                box = [self.sampler.state_dict() if dist.get_rank() == 0 else None]
                dist.broadcast_object_list(box, src=0)
                if dist.get_rank() != 0:
                    self.sampler.load_state_dict(_to_device(box[0], self.labels.device))
            else:
                self.sampler.refresh(features)
        self.ready = True

    def forward(self, index: Tensor, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        """index, labels: [B] -> int64 [B, k] negative sample ids."""
        sampler = self.sampler if self.ready else self.fallback
        with self.timer:
            return sampler.sample(index, labels, self.k, generator)

    @torch.no_grad()
    def topk_share(self, labels: Tensor, neg_idx: Tensor) -> Tensor | None:
        """Fraction of negatives [B, K] whose class is among the anchor's top-k similar classes."""
        if self.topk_classes is None:
            return None
        neg_classes = self.labels[neg_idx]  # [B, K]
        return self.topk_classes[labels.unsqueeze(1), neg_classes].float().mean()

    def get_extra_state(self) -> Any:
        return {"sampler": self.sampler.state_dict(), "ready": self.ready}

    def set_extra_state(self, state: Any) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.ready = bool(state["ready"])


def step_stats(
    negatives: NegativeSource, labels: Tensor, neg_idx: Tensor, contrast_stats: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Scalar diagnostics of one step's negatives: mean anchor-negative and anchor-positive cosine,
    and (when a class similarity is known) the share of negatives from the anchor's top-k classes.
    Also feeds the epoch's hardness histogram."""
    negatives.observe(contrast_stats["neg_scores"])
    out = {"neg_sim": contrast_stats["neg_sim"], "pos_sim": contrast_stats["pos_sim"]}
    share = negatives.topk_share(labels, neg_idx)
    if share is not None:
        out["topk_share"] = share
    return out


def _to_device(state: Any, device: torch.device) -> Any:
    if isinstance(state, Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: _to_device(v, device) for k, v in state.items()}
    return state


def _needs_features(sampler: SamplerBase) -> bool:
    """A sampler whose ``refresh`` does something (it overrides the base no-op)."""
    return type(sampler).refresh is not SamplerBase.refresh
