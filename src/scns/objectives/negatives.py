"""Where a step's negatives come from: a configured sampler wrapped for the objectives.

``NegativeSource`` owns the sampler, keeps its tables in the objective's ``state_dict`` (so a resumed
run samples from the same kNN table), falls back to uniform negatives while a feature-dependent
table (sample-level SCNS) has not been built yet, reports the proposal of what it drew for the
losses' correction, rebuilds adaptive class tables from the memory bank, and diagnoses its draws
on the steps the engine samples for logging.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from scns import dist
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


@dataclass
class ContrastScores:
    """Detached scores of one contrastive term's step, for diagnostics.

    Attributes:
        pos: [B] anchor-positive scores. neg: [B, K] anchor scores of the drawn negatives.
        pseudo: [B, M] scores of latent-mixup pseudo-negatives (``-inf`` where capped), or None.
        temperature: the term's T (softmax masses are measured at it).
    """

    pos: Tensor
    neg: Tensor
    pseudo: Tensor | None
    temperature: float


class DynamicSimilarity:
    """A class similarity with terms only known during training (``bank``), recomputed on demand.

    Args:
        spec: the parsed similarity spec (``scns.similarity.SimilaritySpec``).
        static: its static part [C, C] (``spec.static_part``), or None.
        labels: int64 [N] training labels (rows of the bank).
        num_classes: C.
    """

    def __init__(self, spec: Any, static: Tensor | None, labels: Tensor, num_classes: int) -> None:
        self.spec, self.static, self.labels, self.num_classes = spec, static, labels, int(num_classes)

    @classmethod
    def from_spec(
        cls, spec: Any, class_names: list[str], labels: Tensor, context: dict[str, Any] | None = None
    ) -> DynamicSimilarity:
        """Compute a dynamic spec's static part (if it has one) for ``class_names`` on ``labels``'
        device; the ``bank`` terms are filled in by each call."""
        static = spec.static_part(class_names, context=context) if spec.static_names else None
        static = None if static is None else static.float().to(labels.device)
        return cls(spec, static, labels, len(class_names))

    def __call__(self, bank: Tensor) -> Tensor:
        """[C, C] similarity from the memory bank's rows [N, D]."""
        from scns.similarity.bank import bank_class_similarity

        dynamic = {"bank": bank_class_similarity(bank.float(), self.labels, self.num_classes)}
        return self.spec.combine(self.static, dynamic)


class NegativeSource(nn.Module):
    """Draws ``k`` negative sample ids per anchor, reports their proposal, and diagnoses them.

    Args:
        sampler: the configured sampler (uniform, class_topk, sample_topk, mixture, ...).
        labels: int64 [N] training labels (on the training device).
        k: negatives per anchor.
        similarity: [C, C] class similarity the run uses (for the logged top-k share), or None.
        share_top_k: the top-k share counts the ``share_top_k`` most similar classes (tie groups
            shared, :func:`scns.similarity.topk_weights`); None logs no share.
        log_negatives: how many of each anchor's negatives enter the logged hardness histogram.
        proposal_beta: beta in [0, 1] of the loss's proposal correction (see :meth:`log_ratio`).
        dynamic_similarity: recomputes the class similarity from the memory bank (``bank`` specs);
            the sampler's class tables are rebuilt from it by :meth:`refresh_similarity`.
    """

    labels: Tensor  # buffers, declared for the type checker
    share_mask: Tensor | None
    hardness_hist: Tensor

    def __init__(
        self,
        sampler: SamplerBase,
        labels: Tensor,
        k: int,
        similarity: Tensor | None = None,
        share_top_k: int | None = None,
        log_negatives: int = 2048,
        proposal_beta: float = 0.0,
        dynamic_similarity: DynamicSimilarity | None = None,
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.k = int(k)
        self.register_buffer("labels", labels.long(), persistent=False)
        self.fallback = UniformSampler(labels)
        self.share_top_k = share_top_k
        self.register_buffer("share_mask", None, persistent=False)
        self._set_share_mask(similarity)
        self.ready = not sampler.uses_features()
        #: whether feature tables are rebuilt from the memory bank (False once built from given
        #: features and kept, the legacy distillation table from raw teacher features)
        self.refresh_from_bank = True
        self.log_negatives = int(log_negatives)
        self.proposal_beta = float(proposal_beta)
        self.dynamic_similarity = dynamic_similarity
        self.register_buffer("hardness_hist", torch.zeros(HIST_BINS), persistent=False)
        self.timer = DeviceTimer()
        # table builds are reported with the next epoch_stats, so one made before training
        # (from a prefilled bank) lands in epoch 0
        self.refresh_timer = DeviceTimer()

    def _set_share_mask(self, similarity: Tensor | None) -> None:
        if similarity is None or self.share_top_k is None:
            self.share_mask = None
            return
        from scns.similarity import topk_weights

        c = similarity.shape[0]
        self.share_mask = topk_weights(similarity, min(self.share_top_k, c - 1)) > 0

    def start_epoch(self, epoch: int = 0) -> None:
        """Reset the per-epoch hardness histogram and sampling clock; move the sampler's schedule."""
        self.hardness_hist.zero_()
        self.timer.reset()
        self.timer.bind(self.labels.device)
        self.sampler.set_epoch(epoch)

    def epoch_stats(self) -> dict[str, Any]:
        """Per-epoch log entries: seconds spent sampling, seconds spent (re)building sampler tables
        since the last call, and the hardness histogram counts (of the diagnosed steps)."""
        refresh_s = self.refresh_timer.total()
        self.refresh_timer.reset()
        return {
            "sampling_time_s": self.timer.total(),
            "refresh_time_s": refresh_s,
            "neg_sim_hist": self.hardness_hist.tolist(),
        }

    def needs_refresh(self, epoch: int) -> bool:
        """Whether a feature-dependent table should be (re)built before ``epoch``."""
        return self.sampler.uses_features() and self.refresh_from_bank and self.sampler.should_refresh(epoch)

    def refresh(self, features: Tensor) -> None:
        """Rebuild the sampler's tables from features [N, D] (the memory bank).

        In a distributed run rank 0 builds the tables and broadcasts them, so every rank samples
        from the same table.
        """
        with self.refresh_timer.bind(self.labels.device):
            if dist.active():
                if dist.rank() == 0:
                    self.sampler.refresh(features)
                state = dist.broadcast_object(self.sampler.state_dict() if dist.rank() == 0 else None)
                if dist.rank() != 0:
                    self.sampler.load_state_dict(state_to_device(state, self.labels.device))
            else:
                self.sampler.refresh(features)
        self.ready = True

    def refresh_similarity(self, bank: Tensor) -> None:
        """Recompute an adaptive class similarity from the bank [N, D] and rebuild the class tables
        (every rank computes the same matrix from the same bank; a no-op for a static similarity)."""
        if self.dynamic_similarity is None:
            return
        with self.refresh_timer.bind(self.labels.device):
            similarity = self.dynamic_similarity(bank)
            self.sampler.set_similarity(similarity)
            self._set_share_mask(similarity)

    def forward(self, index: Tensor, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        """index, labels: [B] -> int64 [B, k] negative sample ids."""
        sampler = self.sampler if self.ready else self.fallback
        with self.timer:
            return sampler.sample(index, labels, self.k, generator)

    def log_ratio(self, index: Tensor, labels: Tensor, neg_idx: Tensor) -> Tensor | None:
        """``beta * (log q - log u)`` [B, K] for the losses' proposal correction, or None when there
        is nothing to correct (beta = 0, or uniform negatives drawn while a table is not built).

        q is the sampler's per-draw probability of each negative and u the uniform sampler's, so the
        ratio is exactly 0 for uniform negatives whatever beta.
        """
        if self.proposal_beta == 0 or not self.ready:
            return None
        with self.timer:
            log_q = self.sampler.log_prob(index, labels, neg_idx)
            log_u = self.fallback.log_prob(index, labels, neg_idx)
            return self.proposal_beta * (log_q - log_u)

    @torch.no_grad()
    def diagnostics(self, labels: Tensor, neg_idx: Tensor, scores: ContrastScores) -> dict[str, Tensor]:
        """Scalar diagnostics of one step's negatives (computed only on the steps the engine samples).

        ``neg_sim`` / ``pos_sim``: mean anchor-negative / anchor-positive cosine; ``gap``: their
        difference; ``dup_rate``: share of repeated draws among an anchor's K; ``topk_share``: share of
        negatives from the anchor's top-k classes and ``topk_mass`` their share of the softmax mass
        (when a similarity is known); ``pseudo_mass``: the pseudo-negatives' share of the softmax
        mass and ``pseudo_above_pos``: share of them scoring above the positive (latent mixup).
        Also adds the negatives' cosines to the epoch's hardness histogram.
        """
        from scns.sampling.stats import duplicate_rate, mass_share

        neg = scores.neg.float()
        self.hardness_hist += torch.histc(neg[:, : self.log_negatives], bins=HIST_BINS, min=-1.0, max=1.0)
        out = {
            "neg_sim": neg.mean(),
            "pos_sim": scores.pos.float().mean(),
            "gap": (scores.pos.float() - neg.mean(1)).mean(),
            "dup_rate": duplicate_rate(neg_idx),
        }
        every = neg if scores.pseudo is None else torch.cat([neg, scores.pseudo.float()], dim=1)
        if self.share_mask is not None:
            in_topk = self.share_mask[labels.unsqueeze(1), self.labels[neg_idx]]  # [B, K]
            out["topk_share"] = in_topk.float().mean()
            selected = torch.zeros_like(every, dtype=torch.bool)
            selected[:, : neg.shape[1]] = in_topk
            out["topk_mass"] = mass_share(scores.pos, every, selected, scores.temperature)
        if scores.pseudo is not None:
            selected = torch.zeros_like(every, dtype=torch.bool)
            selected[:, neg.shape[1] :] = True
            out["pseudo_mass"] = mass_share(scores.pos, every, selected, scores.temperature)
            out["pseudo_above_pos"] = (scores.pseudo.float() > scores.pos.float().unsqueeze(1)).float().mean()
        return out

    def get_extra_state(self) -> Any:
        return {"sampler": self.sampler.state_dict(), "ready": self.ready}

    def set_extra_state(self, state: Any) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.ready = bool(state["ready"])


def state_to_device(state: Any, device: torch.device) -> Any:
    """A sampler's ``state_dict`` with every tensor in it (in nested dicts, lists and tuples) moved to
    ``device``; other values as they are."""
    if isinstance(state, Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: state_to_device(v, device) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(state_to_device(v, device) for v in state)
    return state
