"""``ContrastiveNegatives``: SCNS negatives, a memory bank and a contrastive loss for your own loop.

One ``nn.Module`` that holds what the ``scns train`` objective holds for its contrastive term, built
by the same code (:func:`scns.objectives.build.build_negatives` and
:func:`scns.objectives.build.build_contrast` from a :class:`scns.config.ContrastConfig`)::

    term = scns.ContrastiveNegatives(labels=train_labels, dim=128, class_names=names,
                                     sampler="class_topk", similarity="glove", top_k=10)
    for x, y, idx in loader:                      # idx: each sample's position in the training set
        logits, z = model(x)                      # z [B, 128]
        loss = F.cross_entropy(logits, y) + 0.5 * term(z, y, idx)
        opt.zero_grad(); loss.backward(); opt.step()
        term.update()                             # bank rows of this batch <- z (after the step)

The bank update runs after the optimizer step: ``term.update()``, or automatically at the start of
the next call when it was not called (a pending update is part of ``state_dict``, so a checkpoint
taken between the step and the next call resumes exactly). Keep ``term`` a submodule of your model
(or save ``term.state_dict()``) and its bank, sampler tables and normaliser go into your checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scns.config import Config, ConfigError, ContrastConfig
from scns.memory import MemoryBank
from scns.objectives.build import build_contrast, build_negatives, contrast_option, needs_similarity
from scns.objectives.negatives import DynamicSimilarity, state_to_device
from scns.sampling import ClassIndex

POSITIVES = ("class", "self")


class ContrastiveNegatives(nn.Module):
    """A memory-bank contrastive term whose negatives come from an SCNS sampler.

    ``term(z, labels, indices)`` scores each anchor against one positive and ``negatives`` negatives
    read from an [N, D] memory bank (one row per training sample) and returns the InfoNCE (default)
    or NCE loss, a scalar. Negatives never share the anchor's class; the sampler decides which other
    classes (``uniform``, ``class_topk`` from a class similarity, ``sample_topk`` from a kNN table of
    the bank, ``mixture``).

    Args:
        labels: int64 [N] labels of the whole training set, in the order of the ``indices`` passed
            to ``forward`` (the samplers draw negatives by class from them).
        num_samples: N, checked against ``len(labels)`` (optional).
        dim: embedding size D of ``z`` (``ContrastConfig.embed_dim``, default 128).
        class_names: C class names, needed when ``similarity`` names a source.
        similarity: a source of :func:`scns.class_similarity` (``"glove"``, ``"wordnet"``,
            ``"text"``, ``"hierarchy"``...), or a [C, C] tensor (a ``ClassSimilarity`` also works).
        sampler: ``uniform`` | ``class_topk`` | ``sample_topk`` | ``mixture``; default
            ``class_topk`` when a similarity is given, else ``uniform``.
        similarity_context: facts a similarity source may use, e.g. ``{"wnids": [...]}``.
        config: a base ``ContrastConfig``; keyword options override it.
        device: where the bank and sampler tables live (default: ``labels``' device); ``.to()``
            moves them later.
        **options: any other ``ContrastConfig`` field: ``top_k``, ``negatives`` (K, default 4096),
            ``temperature`` (0.07), ``loss`` (``infonce`` | ``nce``), ``positive`` (``class``: a
            random same-class sample's bank row, the default; ``self``: the anchor's own row),
            ``bank_momentum``, ``bank_dtype``, ``latent_mixup``, ``weighting``, ``refresh_every``,
            ``weight`` (multiplies the returned loss, default 1) ...

    Attributes:
        config: the resolved ``ContrastConfig``.
        negatives: the :class:`scns.objectives.negatives.NegativeSource` (sampler + statistics).
        contrast: the :class:`scns.objectives.contrast.BankContrast` (``.bank`` is the
            :class:`scns.MemoryBank`).
        last_stats: detached scalars of the last call (``diagnose=True``): ``neg_sim`` and ``pos_sim``
            (mean anchor-negative / anchor-positive cosine), ``topk_share`` when a similarity
            is given (a source name or a [C, C] matrix), ... (see :meth:`NegativeSource.diagnostics`).
        diagnose: set False to skip the per-call statistics.
    """

    def __init__(
        self,
        labels: Tensor | Sequence[int],
        *,
        num_samples: int | None = None,
        dim: int | None = None,
        class_names: Sequence[str] | None = None,
        similarity: str | Tensor | Any | None = None,
        sampler: str | None = None,
        similarity_context: Mapping[str, Any] | None = None,
        config: ContrastConfig | None = None,
        device: torch.device | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.dtype.is_floating_point or labels.numel() == 0:
            raise ValueError(
                f"labels must be the int64 [N] labels of the training set, got {labels.dtype} {list(labels.shape)}"
            )
        labels = labels.long().to(device if device is not None else labels.device)
        if num_samples is not None and int(num_samples) != labels.numel():
            raise ValueError(
                f"num_samples={num_samples} but labels has {labels.numel()} entries; give one label per "
                "training sample (indices passed to the term index into them)"
            )
        contrast = _resolve_config(config, dim, sampler, similarity, options)
        self.config = contrast
        self.loss_name = contrast_option(Config(contrast=contrast), "loss")
        self.positive = contrast_option(Config(contrast=contrast), "positive")
        if self.positive not in POSITIVES:
            raise ConfigError(f"positive must be one of {', '.join(POSITIVES)}, got '{self.positive}'")
        self.weight = 1.0 if contrast.weight is None else float(contrast.weight)
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        self._similarity, dynamic = _resolve_similarity(
            similarity, self.class_names, similarity_context, labels
        )
        if needs_similarity(contrast) and self._similarity is None and dynamic is None:
            raise ConfigError(
                "sampler class_topk needs a class similarity: similarity='glove' (or wordnet, text, bank, ...) "
                "with class_names=[...], or similarity=<[C, C] tensor>"
            )
        self.negatives = build_negatives(contrast, labels, self._similarity, dynamic)
        self._prefilled = False
        self.contrast = build_contrast(contrast, labels.numel(), self.loss_name)
        self.contrast.to(labels.device)
        self._class_index: ClassIndex | None = None
        self._pending: tuple[Tensor, Tensor] | None = None
        #: compute ``last_stats`` and the hardness histogram each call (a few small reductions)
        self.diagnose = True
        self.last_stats: dict[str, Tensor] = {}

    # ------------------------------------------------------------------ properties
    @property
    def bank(self) -> MemoryBank:
        """The [N, D] :class:`scns.MemoryBank` negatives and positives are read from."""
        return self.contrast.bank

    @property
    def labels(self) -> Tensor:
        """int64 [N] training labels (on the term's device)."""
        return self.negatives.labels

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    @property
    def num_negatives(self) -> int:
        return self.config.negatives

    @property
    def similarity(self) -> Tensor | None:
        """float [C, C] class similarity the sampler uses (None without one)."""
        return self._similarity

    def extra_repr(self) -> str:
        return f"sampler={self.negatives.sampler!r}, loss={self.loss_name}, positive={self.positive}"

    # ------------------------------------------------------------------ the step
    def forward(
        self, z: Tensor, labels: Tensor, indices: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Contrastive loss of a batch.

        Args:
            z: [B, D] embeddings (any float dtype; L2-normalised here, computed in float32 even
                under autocast). Gradients flow into ``z`` only.
            labels: int64 [B] classes of the batch.
            indices: int64 [B] positions of the batch's samples in the training set (the rows of
                ``labels`` given at construction).
            generator: optional ``torch.Generator`` on the term's device for the draws.

        Returns:
            Scalar loss (times ``weight``). In training mode the batch's bank update is queued for
            :meth:`update`; a still-pending update from the previous step is applied first.
        """
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must be [B, {self.dim}] (dim={self.dim}), got {list(z.shape)}")
        if labels.shape != (z.shape[0],) or indices.shape != (z.shape[0],):
            raise ValueError(
                f"labels and indices must be [B={z.shape[0]}], got {list(labels.shape)} and {list(indices.shape)}"
            )
        self.update()
        labels, indices = labels.long(), indices.long()
        with _full_precision(z.device):
            anchor = F.normalize(z.float(), dim=1)
            pos_idx, neg_idx = self.draw(labels, indices, generator)
            log_ratio = self.negatives.log_ratio(indices, labels, neg_idx)
            loss, scores = self.contrast(anchor, pos_idx, neg_idx, generator, log_ratio)
        if self.training:
            self.remember(indices, anchor)
        self.last_stats = self.negatives.diagnostics(labels, neg_idx, scores) if self.diagnose else {}
        return loss * self.weight if self.weight != 1.0 else loss

    @torch.no_grad()
    def draw(
        self, labels: Tensor, indices: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """The bank rows a batch is scored against: (positives int64 [B], negatives int64 [B, K]).

        Positives are a random same-class sample (``positive="class"``) or the anchor itself
        (``"self"``); negatives come from the sampler and never share the anchor's class. For
        losses of other libraries: read the rows with ``term.bank.gather(ids)``.
        """
        labels, indices = labels.long(), indices.long()
        if self.positive == "self":
            pos_idx = indices
        else:
            pos_idx = self._positives().sample_from_classes(labels, generator, validate=False)
        return pos_idx, self.negatives(indices, labels, generator)

    @torch.no_grad()
    def remember(self, indices: Tensor, z: Tensor) -> None:
        """Queue the bank update of rows ``indices`` [B] with embeddings z [B, D] (applied by
        :meth:`update`); ``forward`` does this itself in training mode."""
        self._pending = (indices.detach().long(), F.normalize(z.detach().float(), dim=1))

    @torch.no_grad()
    def update(self) -> None:
        """Apply the pending bank update (rows ``indices`` <- momentum step towards ``z``).

        Call after ``optimizer.step()``; under DDP every rank calls it (the rows of all ranks are
        gathered, so every replica holds the same bank). A no-op when nothing is pending.
        """
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.contrast.update(*pending)

    # ------------------------------------------------------------------ epochs and tables
    def start_epoch(self, epoch: int) -> None:
        """Call before each epoch (0-based): resets the epoch's statistics and, for ``sample_topk``,
        rebuilds its kNN table from the bank every ``refresh_every`` epochs from epoch 1 on (the
        bank holds every sample only after one epoch; until then negatives are uniform)."""
        self.update()
        self.negatives.start_epoch(epoch)
        # as the engine's objectives do (scns.objectives.base.Objective.on_epoch_start): a random bank
        # builds no table, so epoch 0 waits unless the bank was prefilled
        if epoch >= 1 or self._prefilled:
            if self.negatives.needs_refresh(epoch):
                self.refresh()
            self.negatives.refresh_similarity(self.bank.table)

    @torch.no_grad()
    def prefill(self, indices: Tensor, z: Tensor) -> None:
        """Fill bank rows ``indices`` [B] with embeddings z [B, D] outright (no momentum): call it over
        the whole training set (un-augmented, no grad) before the first step, so epoch 0 contrasts
        against real embeddings and sample tables and ``bank`` similarities can be built at once."""
        self.bank.fill(indices.to(self.labels.device).long(), z.to(self.labels.device))
        self._prefilled = True

    def refresh(self, features: Tensor | None = None) -> None:
        """Rebuild a feature-dependent sampler table (``sample_topk``) from features [N, F]
        (default: the memory bank). A no-op for samplers without one."""
        self.negatives.refresh(self.bank.table if features is None else features)

    def epoch_stats(self) -> dict[str, Any]:
        """Since the last :meth:`start_epoch`: seconds spent sampling and rebuilding tables, and the
        hardness histogram ``neg_sim_hist`` (counts of anchor-negative cosines in 40 bins over [-1, 1])."""
        return self.negatives.epoch_stats()

    # ------------------------------------------------------------------ state and devices
    def get_extra_state(self) -> Any:
        return {"pending": self._pending}

    def set_extra_state(self, state: Any) -> None:
        pending = state.get("pending") if isinstance(state, Mapping) else None
        device = self.labels.device
        self._pending = None if pending is None else (pending[0].to(device), pending[1].to(device))

    def _apply(self, fn: Any, recurse: bool = True) -> ContrastiveNegatives:
        before = self.labels.device
        super()._apply(fn, recurse)
        after = self.labels.device
        if after != before:  # samplers hold plain tensors: rebuild them on the new device, same state
            state = self.negatives.get_extra_state()
            if self._similarity is not None:
                self._similarity = self._similarity.to(after)
            rebuilt = build_negatives(self.config, self.labels, self._similarity)
            rebuilt.set_extra_state(state_to_device(state, after))
            self.negatives = rebuilt
            self._class_index = None
            if self._pending is not None:
                self._pending = (self._pending[0].to(after), self._pending[1].to(after))
        return self

    def _positives(self) -> ClassIndex:
        if self._class_index is None:
            self._class_index = ClassIndex(self.labels)
        return self._class_index


def _resolve_config(
    base: ContrastConfig | None,
    dim: int | None,
    sampler: str | None,
    similarity: Any,
    options: Mapping[str, Any],
) -> ContrastConfig:
    """``base`` (default ``ContrastConfig()``) with ``options`` applied through the config's own checks."""
    names = {f.name for f in fields(ContrastConfig)}
    if "embed_dim" in options and dim is not None:
        raise TypeError("give the embedding size once: dim= or embed_dim=, not both")
    overrides = {f"contrast.{k}": v for k, v in options.items() if k in names}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; ContrastiveNegatives takes the ContrastConfig fields: "
            f"{', '.join(sorted(names))}"
        )
    if dim is not None:
        overrides["contrast.embed_dim"] = dim
    spec = similarity if isinstance(similarity, str) else None
    overrides["contrast.similarity"] = spec
    if sampler is None:
        sampler = (base.sampler if base is not None else None) or (
            "class_topk" if similarity is not None else "uniform"
        )
    overrides["contrast.sampler"] = sampler
    config = Config() if base is None else replace(Config(), contrast=base)
    return config.with_overrides(overrides).contrast


def _resolve_similarity(
    similarity: Any,
    class_names: list[str] | None,
    context: Mapping[str, Any] | None,
    labels: Tensor,
) -> tuple[Tensor | None, DynamicSimilarity | None]:
    """The [C, C] similarity (None without one) and, for specs with a ``bank`` term, what recomputes
    it from the memory bank at each :meth:`ContrastiveNegatives.start_epoch`."""
    if similarity is None:
        return None, None
    if isinstance(similarity, str):
        from scns.similarity import class_similarity
        from scns.similarity.spec import SimilaritySpec

        spec = SimilaritySpec.parse(similarity)
        context = {**(context or {}), "device": str(labels.device)}
        if spec.is_dynamic:
            names = class_names or [str(c) for c in range(int(labels.max()) + 1)]
            dynamic = DynamicSimilarity.from_spec(spec, names, labels, context)
            return dynamic.static, dynamic
        if class_names is None:
            raise ConfigError(
                f"similarity='{similarity}' is computed from class names: pass class_names=[...] (one per class)"
            )
        matrix = class_similarity(similarity, class_names, context=context)
    else:
        matrix = torch.as_tensor(getattr(similarity, "matrix", similarity))
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"similarity must be a [C, C] matrix, got {list(matrix.shape)}")
    if class_names is not None and matrix.shape[0] != len(class_names):
        raise ValueError(
            f"similarity is {matrix.shape[0]} x {matrix.shape[0]} but there are {len(class_names)} class names"
        )
    return matrix.float().to(labels.device), None


@contextlib.contextmanager
def _full_precision(device: torch.device):
    """Autocast off (scores and loss in float32) on the device types autocast knows."""
    if device.type in ("cpu", "cuda", "xpu", "mps"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:
        yield
