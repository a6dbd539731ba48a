"""The training engine: one straight loop, identical for every method.

``fit`` builds data, model and objective from a :class:`~scns.config.Config`, trains epoch by epoch,
evaluates, logs metrics as JSON lines and writes an atomic checkpoint after every epoch. A run
resumed from its directory continues from the last checkpoint; since every epoch's shuffling,
augmentation and sampling randomness is a pure function of (seed, epoch), a resumed run in
deterministic mode ends with exactly the weights and metrics of an uninterrupted one.

A run directory has one writer: :meth:`Trainer.create` and :meth:`Trainer.resume` take its lock
(:func:`scns.runlock.acquire_run_lock`; under torchrun rank 0 alone) and :meth:`Trainer.fit`
releases it when it stops, however it stops. Resume semantics are in :meth:`Trainer.resume`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from scns.config import Config, ConfigError
from scns.data.augment import BatchTransform
from scns.data.datasets import get_spec, load_dataset
from scns.data.imageset import ImageSet, carve_validation
from scns.data.loader import DeviceLoader
from scns.errors import ScnsError
from scns.objectives import Objective
from scns.provenance import code_provenance
from scns.rundir import RunDir, RunDirError, read_json_lines
from scns.runlock import FileLock, acquire_run_lock, holder_record
from scns.train import checkpoint as ckpt
from scns.train import distributed as ddp
from scns.train.loggers import open_loggers
from scns.train.metrics import MeanMeter, SampledMeter, topk_correct
from scns.train.schedule import lr_at, steps_per_epoch

#: Per-epoch metric keys that describe the machine and its load rather than the run's arithmetic
#: (a resumed run reproduces every other key exactly).
MACHINE_METRICS = frozenset(
    {
        "epoch_time_s",
        "images_per_s",
        "step_time_s",
        "sampling_time_s",
        "refresh_time_s",
        "load_avg_1m",
        "cpu_share",
        "torch_threads",
        "cpu_count",
        "cpu_capability",
        "device_type",
    }
)


class NonFiniteLossError(ScnsError, RuntimeError):
    """The loss became NaN or infinite; a diagnostic checkpoint was written next to the run's checkpoints."""


ObjectiveFactory = Callable[[Config, nn.Module, ImageSet, torch.device], Objective]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def usable_cores() -> int | None:
    """The cores this process may run on (its affinity mask, else the machine's count): logged per
    epoch beside the load average, which is judged against it."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS has none): logged per epoch so that
    timings taken while other work shared the CPU can be recognised."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def epoch_generator(seed: int, epoch: int, device: torch.device, stream: int = 0) -> torch.Generator:
    """A generator whose state depends only on (seed, epoch, stream): resume-safe randomness."""
    generator = torch.Generator(device=device)
    generator.manual_seed((seed * 1_000_003 + epoch * 7_919 + stream * 104_729) % (2**63 - 1))
    return generator


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels (needed for bit-exact resume on GPU)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)


@dataclass
class EvalResult:
    """Accuracy on a labelled set; with superclasses, top-1 errors split by where they land (percent
    of all samples): inside the true class's superclass (a near class) or across superclasses."""

    top1: float
    top5: float
    loss: float
    n: int
    err_within_super: float | None = None
    err_across_super: float | None = None

    def as_dict(self, prefix: str = "test_") -> dict[str, float]:
        out = {f"{prefix}top1": self.top1, f"{prefix}top5": self.top5, f"{prefix}loss": self.loss}
        if self.err_within_super is not None and self.err_across_super is not None:
            out[f"{prefix}err_within_super"] = self.err_within_super
            out[f"{prefix}err_across_super"] = self.err_across_super
        return out


def fine_to_coarse(data: ImageSet) -> Tensor | None:
    """int64 [C]: each class's superclass (None for a dataset without superclasses)."""
    if data.coarse_labels is None:
        return None
    mapping = torch.full((data.num_classes,), -1, dtype=torch.int64)
    mapping[data.labels] = data.coarse_labels
    return mapping


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    transform: BatchTransform,
    batch_size: int,
    device: torch.device,
    autocast: contextlib.AbstractContextManager | None = None,
    rank: int = 0,
    world_size: int = 1,
    superclass: Tensor | None = None,
) -> EvalResult:
    """Top-1/top-5 accuracy (percent) and mean cross-entropy of ``model`` on a labelled set.

    Args:
        images: uint8 [N, H, W, 3] (any device). labels: int64 [N].
        rank, world_size: under DDP each rank evaluates every world_size-th sample and the counts
            are summed, so every rank returns the accuracy on all N samples.
        superclass: optional int64 [C] superclass of each class (:func:`fine_to_coarse`): the top-1
            errors are then split into within- and across-superclass confusions.
    """
    was_training = model.training
    model.eval()
    images, labels = images[rank::world_size], labels[rank::world_size]
    loader = DeviceLoader(
        images, labels, batch_size, device=device, transform=transform, shuffle=False, drop_last=False
    )
    correct = torch.zeros(2, device=device)
    loss_sum = torch.zeros((), device=device)
    within = torch.zeros((), device=device)  # wrong class, same superclass
    coarse = None if superclass is None else superclass.to(device)
    for batch in loader:
        with autocast or contextlib.nullcontext():
            logits, _ = model(batch.x)
        logits = logits.float()
        correct += topk_correct(logits, batch.y, (1, 5))
        loss_sum += F.cross_entropy(logits, batch.y, reduction="sum")
        if coarse is not None:
            pred = logits.argmax(1)
            within += ((pred != batch.y) & (coarse[pred] == coarse[batch.y])).sum()
    model.train(was_training)
    count = torch.tensor([float(labels.numel())], device=device)
    totals = ddp.all_reduce_(torch.cat([correct, loss_sum.view(1), count, within.view(1)]))
    n = int(totals[3])
    top1, top5 = (100.0 * totals[:2] / max(1, n)).tolist()
    result = EvalResult(top1=top1, top5=top5, loss=float(totals[2]) / max(1, n), n=n)
    if coarse is not None:
        result.err_within_super = 100.0 * float(totals[4]) / max(1, n)
        result.err_across_super = 100.0 - top1 - result.err_within_super
    return result


def default_run_name(config: Config) -> str:
    """``<dataset>-<model>-s<seed>-<YYYYmmdd-HHMMSS>-p<pid>``: two live processes never generate the
    same name, and :meth:`Trainer.create` makes the directory exclusively (adding ``-2``, ``-3``
    ... when one process starts two runs within a second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.data.dataset}-{config.model.name}-s{config.train.seed}-{stamp}-p{os.getpid()}"


def _make_dir(path: Path, exclusive: bool = False) -> None:
    """``mkdir -p`` (``exclusive``: the last component must be new), with a one-line error."""
    try:
        if exclusive:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        else:
            path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if exclusive and path.is_dir():
            raise
        raise RunDirError(
            f"cannot create run directory {path}: a file is in the way; choose another --out-dir"
        ) from None
    except OSError as err:
        raise RunDirError(
            f"cannot create run directory {path}: {err.strerror}; choose a writable --out-dir"
        ) from None


def _new_run_dir(out_dir: Path, name: str) -> Path:
    """Create ``out_dir/name`` (or ``name-2``, ``name-3``, ... when taken) exclusively."""
    for attempt in range(1, 1000):
        path = out_dir / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            _make_dir(path, exclusive=True)
        except FileExistsError:
            continue
        return path
    raise RunDirError(f"cannot find a free run name {name}-N under {out_dir}; pass --name")


def _summary_readable(files: RunDir) -> bool:
    try:
        return isinstance(json.loads(files.summary.read_text()), dict)
    except (OSError, ValueError):
        return False


@dataclass
class ResumeInfo:
    """What a resume found and changed (``Trainer.resume_info``)."""

    epochs_done: int
    changes: dict[str, tuple[Any, Any]]
    finished: bool


class Trainer:
    """Trains one run. Build with :meth:`create` (new run) or :meth:`resume` (existing run directory)."""

    #: the objective, or its DDP wrapper, that a step calls (set by :meth:`build`)
    step_module: nn.Module
    #: the checkpoint :meth:`build` restores (set by :meth:`resume`)
    _resume_from: Path | None = None

    def __init__(
        self, config: Config, run_dir: Path, objective_factory: ObjectiveFactory | None = None
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.device = resolve_device(config.train.device)
        self.objective_factory = objective_factory or default_objective_factory
        self.start_epoch = 0
        self.global_step = 0
        self.best_top1 = -math.inf
        self.nonfinite_skipped = 0
        # read now, not at the end: a long run (or grid) keeps the code it imported while HEAD moves on
        self.code = code_provenance()
        self._built = False
        self._lock: FileLock | None = None
        self.resume_info: ResumeInfo | None = None

    @property
    def files(self) -> RunDir:
        """The paths of this run's files (derived from ``run_dir``)."""
        return RunDir(self.run_dir)

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, config: Config, run_dir: str | Path | None = None, **kwargs: Any) -> Trainer:
        """A new run; ``run_dir`` defaults to ``<train.out_dir>/<train.name>``, or to a generated name
        (:func:`default_run_name`) whose directory is made exclusively, so runs never share one.

        Takes the run's lock (rank 0 only), held until :meth:`fit` stops or :meth:`release`.
        A distillation teacher is pinned (:func:`~scns.train.validate.pin_teacher`), and the config is
        validated and its defaults filled (:func:`~scns.train.validate.resolve_config`), so no entry
        point can start a run from an invalid config and ``config.yaml`` holds the values used.

        Raises:
            RunBusyError: another process writes ``run_dir`` (the message names it).
            ConfigError: ``run_dir`` already holds a run (use :meth:`resume`).
            RunDirError: the directory cannot be created or written.
        """
        from scns.train.validate import resolve_config

        config = resolve_config(config)
        writer = ddp.env_is_rank_zero()
        if run_dir is None:
            out_dir = Path(config.train.out_dir)
            if config.train.name:
                run_dir = out_dir / config.train.name
            elif writer:
                run_dir = _new_run_dir(out_dir, default_run_name(config))
            else:  # only rank 0 writes; the other ranks never touch the directory
                run_dir = out_dir / default_run_name(config)
        run_dir = Path(run_dir)
        lock = None
        if writer:
            _make_dir(run_dir)
            lock = acquire_run_lock(run_dir)
            if RunDir(run_dir).last_checkpoint.exists():
                lock.release(remove=True)
                raise ConfigError(
                    f"run directory {run_dir} already holds a run; use `--resume {run_dir}` or another name"
                )
        trainer = cls(config, run_dir, **kwargs)
        trainer._lock = lock
        return trainer

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        overrides: list[str] | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Trainer:
        """Continue the run in ``run_dir`` from its last checkpoint (a run with none starts over).

        Resume semantics: the run's ``config.yaml`` is the base and ``overrides`` are applied over
        it. Only :data:`~scns.train.validate.RESUMABLE_KEYS` may change (epochs, lr, skip-nonfinite,
        progress, device, data directory, ...); any other changed option would change what is
        trained and is refused with a ``ConfigError`` naming it. The result is validated, the
        teacher of a distillation run checked against its pinned SHA-256, and, once training
        proceeds, ``config.yaml`` rewritten and the change recorded in ``history.jsonl`` (time, epochs
        done, each changed key's old and new value). ``train.epochs`` may not drop below the epochs
        already trained. A finished run (every epoch trained, summary written) is left as it is
        unless more epochs are asked for: ``resume_info.finished`` is True and :meth:`fit` returns
        its summary without training or writing anything.

        Takes the run's lock (rank 0 only), held until :meth:`fit` stops or :meth:`release`.
        """
        from scns.train.validate import fill_defaults, resolve_config, resume_changes

        run_dir = Path(run_dir)
        files = RunDir(run_dir)
        if not run_dir.is_dir():
            raise ConfigError(f"{run_dir} is not a scns run directory (no such directory)")
        lock = acquire_run_lock(run_dir) if ddp.env_is_rank_zero() else None
        try:
            if not files.config.is_file():
                raise ConfigError(f"{run_dir} is not a scns run directory (no {files.config.name})")
            stored = Config.load(files.config)
            # the options the caller changes, compared before defaults are filled in (a filled default
            # moves with them, and a config.yaml written before filling holds None)
            requested = stored.with_overrides(overrides or [])
            changes = resume_changes(stored, requested)
            config = resolve_config(requested)
            base = fill_defaults(stored)
            epochs_done = 0
            if files.last_checkpoint.is_file():
                epochs_done = int(ckpt.load_checkpoint(files.last_checkpoint, map_location="cpu")["epoch"])
            if config.train.epochs < epochs_done:
                raise ConfigError(
                    f"train.epochs={config.train.epochs} is fewer than the {epochs_done} epochs {run_dir} "
                    "has trained already; give at least that many"
                )
            finished = epochs_done >= config.train.epochs and _summary_readable(files)
        except BaseException:
            if lock is not None:
                lock.release(remove=True)
            raise
        trainer = cls(base if finished else config, run_dir, **kwargs)
        trainer._resume_from = files.last_checkpoint
        trainer._lock = lock
        trainer.resume_info = ResumeInfo(epochs_done=epochs_done, changes=changes, finished=finished)
        return trainer

    def release(self) -> None:
        """Give up the run directory's lock (:meth:`fit` does this when it stops); idempotent."""
        if self._lock is not None:
            self._lock.release(remove=True)
            self._lock = None

    def release_distributed(self) -> None:
        """Drop the DDP wrapper, the one object that holds the process group (its C++ Reducer), so
        that the group can be destroyed next (:func:`scns.train.distributed.session` calls this before
        it does). Model, objective and counters stay readable; a later :meth:`fit` builds anew."""
        if "step_module" in self.__dict__:
            self.step_module = self.objective
        self._built = False

    def build(self) -> None:
        """Load data, build model/objective/optimizer, restore a checkpoint when resuming."""
        cfg = self.config
        set_deterministic(cfg.train.deterministic)
        self.dist, self.device = ddp.init_distributed(self.device, cfg.train.dist_timeout_s)
        if cfg.data.batch_size % self.dist.world_size:
            raise ConfigError(
                f"data.batch_size={cfg.data.batch_size} is the global batch; it must divide evenly over "
                f"{self.dist.world_size} processes"
            )
        torch.manual_seed(cfg.train.seed)
        self.spec = get_spec(cfg.data.dataset)
        root = cfg.data.data_dir
        self.train_set = load_dataset(cfg.data.dataset, root, "train", download=cfg.data.download)
        self.eval_set = self._load_eval_set(root)
        self.num_classes = len(self.train_set.classes)
        on_cuda = self.device.type == "cuda"
        memory_format = torch.channels_last if (on_cuda and cfg.train.channels_last) else None
        self.train_transform = BatchTransform.from_spec(
            self.spec, train=cfg.data.augment, channels_last=memory_format is not None
        )
        self.eval_transform = BatchTransform.from_spec(
            self.spec, train=False, channels_last=memory_format is not None
        )
        if cfg.data.batch_size > len(self.train_set.labels):
            raise ConfigError(
                f"data.batch_size={cfg.data.batch_size} exceeds the {len(self.train_set.labels)} training samples"
            )
        self.loader = DeviceLoader(
            self.train_set.images,
            self.train_set.labels,
            cfg.data.batch_size // self.dist.world_size,
            device=self.device,
            transform=self.train_transform,
            shuffle=True,
            drop_last=True,
            seed=cfg.train.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        from scns.models import create_model

        model = create_model(cfg.model.name, num_classes=self.num_classes).to(self.device)
        if memory_format is not None:
            model = model.to(memory_format=memory_format)  # type: ignore[call-overload]  # torch's overloads omit memory_format
        self.model = model
        self.objective = self.objective_factory(cfg, model, self.train_set, self.device).to(self.device)
        self.step_module = self.objective
        if self.dist.enabled:
            # Banks stay identical through all-gathered updates, so buffers are not re-broadcast each
            # step (DDP still syncs them once, here, from rank 0).
            self.step_module = ddp.wrap(self.objective, self.device, forward_sync_buffers=False)
        self.optimizer = torch.optim.SGD(
            self.objective.trainable_parameters(),
            lr=cfg.optim.lr,
            momentum=cfg.optim.momentum,
            nesterov=cfg.optim.nesterov,
            weight_decay=cfg.optim.weight_decay,
        )
        self.autocast = (
            torch.autocast(device_type="cuda", dtype=torch.bfloat16)
            if (on_cuda and cfg.train.amp)
            else contextlib.nullcontext()
        )
        self.steps_per_epoch = steps_per_epoch(len(self.loader), cfg.train.max_steps_per_epoch)
        resume_from = self._resume_from
        if resume_from is not None and resume_from.is_file():
            self._restore(ckpt.load_checkpoint(resume_from, map_location=self.device))
        self._built = True

    def _load_eval_set(self, root: str | None) -> ImageSet:
        """The split this run evaluates on; carves the validation images out of ``self.train_set``."""
        data = self.config.data
        if data.val_size > 0:
            self.train_set, val_set = carve_validation(self.train_set, data.val_size, data.val_seed)
            if data.eval_split == "val":
                return val_set
        return load_dataset(data.dataset, root, "test", download=False)

    # ------------------------------------------------------------------ state
    def state_dict(self, epoch_done: int) -> dict[str, Any]:
        model_keys = {f"model.{k}" for k in self.model.state_dict()}
        objective_state = {k: v for k, v in self.objective.state_dict().items() if k not in model_keys}
        return {
            "config": self.config.to_dict(),
            "num_classes": self.num_classes,
            "classes": list(self.train_set.classes),
            "model": self.model.state_dict(),
            "objective": objective_state,
            "optimizer": self.optimizer.state_dict(),
            "epoch": epoch_done,
            "global_step": self.global_step,
            "best_top1": self.best_top1,
            "nonfinite_skipped": self.nonfinite_skipped,
            "rng": ckpt.capture_rng_state(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        missing, unexpected = self.objective.load_state_dict(state["objective"], strict=False)
        missing = [k for k in missing if not k.startswith("model.")]
        if missing or unexpected:
            raise ckpt.CheckpointError(
                f"checkpoint {state['path']} does not match this objective (missing {missing}, unexpected {unexpected})"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.best_top1 = float(state["best_top1"])
        self.nonfinite_skipped = int(state.get("nonfinite_skipped", 0))
        ckpt.restore_rng_state(state["rng"])

    def _truncate_metrics(self, epochs_done: int) -> None:
        """Drop metric lines of epochs after the checkpoint (a killed run may have logged them) and a
        torn last line (a process killed, or a disk filled, while writing it)."""
        path = self.files.metrics
        if not path.exists():
            return
        records, torn = read_json_lines(path)
        if torn:
            print(
                f"scns: note: {path}: dropped a torn last line (the run stopped while writing it)",
                file=sys.stderr,
            )
        kept = [json.dumps(r) for r in records if r.get("epoch", math.inf) < epochs_done]
        ckpt.atomic_write_bytes(path, ("\n".join(kept) + "\n" if kept else "").encode())

    def _start_writing(self) -> None:
        """Rank 0, before the first epoch: config.yaml, the resume's history record, metrics cut back
        to the checkpoint, temporary files of a killed write removed."""
        files = self.files
        _make_dir(self.run_dir)
        if self._lock is None:  # a Trainer built directly, or fit a second time
            self._lock = acquire_run_lock(self.run_dir)
        for stale in files.checkpoints.glob(".*.tmp") if files.checkpoints.is_dir() else ():
            stale.unlink(missing_ok=True)  # we hold the lock: no other writer owns them
        for stale in self.run_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        config_text = yaml.safe_dump(self.config.to_dict(), sort_keys=False)
        ckpt.atomic_write_bytes(files.config, config_text.encode())
        if self.resume_info is not None:
            self._append_history(self.resume_info)
        # drop metric lines past the checkpoint (a killed run, or a run restarted without one)
        self._truncate_metrics(self.start_epoch)

    def _append_history(self, info: ResumeInfo) -> None:
        holder = holder_record()
        record = {
            "event": "resume",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "epochs_done": info.epochs_done,
            "changed": {key: {"from": old, "to": new} for key, (old, new) in sorted(info.changes.items())},
            "host": socket.gethostname(),
            "pid": holder["pid"],
            "command": holder["command"],
        }
        self._append_line(self.files.history, record)

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict[str, Any]:
        """Train to ``train.epochs``; returns the run summary (also written to ``summary.json``)."""
        if self.resume_info is not None and self.resume_info.finished:
            self.release()
            return json.loads(self.files.summary.read_text())
        try:
            return self._fit()
        finally:
            self.release()

    def _fit(self) -> dict[str, Any]:
        if not self._built:
            self.build()
        cfg = self.config
        if self.dist.is_main:
            self._start_writing()
        loggers = open_loggers(cfg.train.log, self.run_dir, self.start_epoch) if self.dist.is_main else None
        started = time.perf_counter()
        if self.start_epoch == 0 and self.global_step == 0 and cfg.contrast.bank_prefill:
            self._prefill_banks()
        last_eval: EvalResult | None = None
        for epoch in range(self.start_epoch, cfg.train.epochs):
            with self._peer_failures(epoch):
                record = self._train_epoch(epoch)
            if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == cfg.train.epochs:
                with self._peer_failures(epoch):
                    last_eval = self.evaluate()
                record.update(last_eval.as_dict(f"{self.eval_set.split}_"))
                improved = last_eval.top1 > self.best_top1
                self.best_top1 = max(self.best_top1, last_eval.top1)
            else:
                improved = False
            record["best_top1"] = self.best_top1
            if self.dist.is_main:
                self._append_metrics(record)
                if loggers is not None:  # opened on the main process
                    loggers.log_epoch(record)  # --log tensorboard; metrics.jsonl stays the record
                self._save(epoch + 1, improved)
                self._print_epoch(record)
        if last_eval is None:  # resumed after its last epoch (killed before the summary was written)
            last_eval = self.evaluate()
        summary = self._summary(last_eval, time.perf_counter() - started)
        if self.dist.is_main:
            ckpt.atomic_write_bytes(self.files.summary, json.dumps(summary, indent=2).encode())
            if loggers is not None:
                loggers.close()
        return summary

    def _prefill_banks(self) -> None:
        """One no-grad pass over the training set (no augmentation) fills every memory bank before
        the first step; every rank makes the whole pass, so the banks agree without a gather."""
        loader = DeviceLoader(
            self.train_set.images,
            self.train_set.labels,
            self.config.data.eval_batch_size,
            device=self.device,
            transform=self.eval_transform,
            shuffle=False,
            drop_last=False,
        )
        began = time.perf_counter()
        with self.autocast:
            filled = self.objective.prefill_banks(loader)
        self.prefill_time_s = time.perf_counter() - began
        if filled and self.dist.is_main and self.config.train.progress:
            print(
                f"memory banks prefilled from {len(self.train_set)} training images in {self.prefill_time_s:.1f} s",
                flush=True,
            )

    @contextlib.contextmanager
    def _peer_failures(self, epoch: int):
        """Under DDP, turn a failed collective (a peer died or hung) into one clear error."""
        try:
            yield
        except RuntimeError as err:
            if not self.dist.enabled or isinstance(err, NonFiniteLossError):
                raise
            raise ddp.DistributedError(
                f"rank {self.dist.rank} of {self.dist.world_size} stopped in epoch {epoch}: {err}. "
                "When one process of a distributed run dies or stops answering, the others stop here "
                f"(collective timeout train.dist_timeout_s={self.config.train.dist_timeout_s:g}). Check the "
                f"first failing rank's log, then continue with --resume {self.run_dir}."
            ) from err

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.config
        self.objective.train()
        self.loader.set_epoch(epoch)
        stream = 1 + self.dist.rank  # each rank draws its own negatives
        # the clock includes the objective's epoch start: a sampler table rebuilt there is training cost
        epoch_start, cpu_start = time.perf_counter(), time.process_time()
        self.objective.on_epoch_start(
            epoch, epoch_generator(cfg.train.seed, epoch, self.device, stream=stream)
        )
        meter = MeanMeter()
        diagnostics = SampledMeter()
        progress = self._progress(epoch)
        seen = 0
        for step_in_epoch, batch in enumerate(self.loader):
            if step_in_epoch >= self.steps_per_epoch:
                break
            lr = lr_at(self.global_step, self.steps_per_epoch, cfg.train.epochs, cfg.optim)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            # diagnostics only on the logged steps: they cost nothing in between
            self.objective.diagnose = step_in_epoch % cfg.train.log_every == 0
            with self.autocast:
                out = self.step_module(batch)
            # One scalar sync per step: a non-finite update must never reach the weights
            # (torch's GradScaler makes the same trade).
            finite = ddp.all_reduce_(torch.isfinite(out.loss.detach()).float().view(1), op="min")
            if not bool(finite):  # all ranks decide together under DDP
                self._handle_nonfinite(epoch, step_in_epoch, out)
                continue
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            self.objective.after_step()
            self.global_step += 1
            n = batch.y.numel()
            seen += n
            acc = topk_correct(out.logits.detach().float(), batch.y, (1,))[0] * (100.0 / n)
            meter.update({"loss": out.loss, "acc": acc, **out.parts}, n)
            if out.stats:
                diagnostics.update(out.stats)
            if progress is not None and (step_in_epoch + 1) % cfg.train.log_every == 0:
                values = meter.compute()
                rate = seen / max(1e-9, time.perf_counter() - epoch_start)
                progress.set_postfix(
                    loss=f"{values['loss']:.3f}", acc=f"{values['acc']:.1f}", img_s=f"{rate:.0f}"
                )
                progress.update(cfg.train.log_every * n)
        if progress is not None:
            progress.close()
        elapsed = time.perf_counter() - epoch_start
        cpu_s = time.process_time() - cpu_start
        values = meter.compute()
        record: dict[str, Any] = {
            "epoch": epoch,
            "lr": lr_at(max(0, self.global_step - 1), self.steps_per_epoch, cfg.train.epochs, cfg.optim),
            "train_loss": values.pop("loss", float("nan")),
            "train_acc": values.pop("acc", float("nan")),
            "epoch_time_s": elapsed,
            "images_per_s": seen / max(elapsed, 1e-9),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": usable_cores(),
            # the widest vector ISA torch's CPU kernels use (AVX2, AVX512): CPU epoch times from
            # machines of different capability are not comparable
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "device_type": self.device.type,
            "load_avg_1m": load_average(),
            # the process's CPU time over its threads' wall time: below ~1, a thread waited for a core
            "cpu_share": cpu_s / max(elapsed * torch.get_num_threads(), 1e-9),
        }
        record.update({f"train_{k}": v for k, v in values.items()})
        record.update({f"train_{k}": v for k, v in diagnostics.compute().items()})
        record["step_time_s"] = elapsed / max(1, self.steps_per_epoch)
        record.update(self.objective.epoch_stats())
        return record

    def _handle_nonfinite(self, epoch: int, step_in_epoch: int, out: Any) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        parts = {k: float(v.detach()) for k, v in out.parts.items()}
        if self.nonfinite_skipped < self.config.train.skip_nonfinite:
            self.nonfinite_skipped += 1
            print(
                f"warning: non-finite loss at epoch {epoch} step {step_in_epoch} (parts {parts}); step skipped "
                f"({self.nonfinite_skipped}/{self.config.train.skip_nonfinite} allowed)",
                file=sys.stderr,
            )
            return
        path = self.files.nonfinite_checkpoint(epoch, step_in_epoch)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.save_checkpoint(path, {**self.state_dict(epoch), "nonfinite_parts": parts})
        from scns.train.validate import nonfinite_options

        bad = nonfinite_options(self.config)
        advice = (
            f"The options {', '.join(k for k, _ in bad)} are not finite numbers: give finite values."
            if bad
            else f"Lower optim.lr, check the data, or continue with `--resume {self.run_dir} --skip-nonfinite N` "
            "to tolerate up to N such steps."
        )
        raise NonFiniteLossError(
            f"loss is not finite at epoch {epoch}, step {step_in_epoch} (parts: {parts}). "
            f"Model state before this step saved to {path}. {advice}"
        )

    def evaluate(self) -> EvalResult:
        return evaluate(
            self.model,
            self.eval_set.images,
            self.eval_set.labels,
            self.eval_transform,
            self.config.data.eval_batch_size,
            self.device,
            self.autocast,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            superclass=fine_to_coarse(self.train_set),
        )

    # ------------------------------------------------------------------ output
    def _save(self, epochs_done: int, improved: bool) -> None:
        """best.pt when the epoch improved, then last.pt, each written atomically (a failed write,
        say a full disk, leaves the previous file and no temporary one). best.pt goes first: if its
        write fails, last.pt still holds the previous epoch, so a resume trains this epoch again and
        writes both (the other order would lose the best checkpoint for good)."""
        files = self.files
        data = ckpt.serialize_checkpoint(self.state_dict(epochs_done))
        if improved:
            ckpt.atomic_write_bytes(files.best_checkpoint, data)
        ckpt.atomic_write_bytes(files.last_checkpoint, data)

    def _append_metrics(self, record: dict[str, Any]) -> None:
        self._append_line(self.files.metrics, record)

    @staticmethod
    def _append_line(path: Path, record: dict[str, Any]) -> None:
        """Append one JSON line durably; a failed write (a full disk) is cut back off the file, so the
        lines already there stay whole. (A process killed mid-line leaves a torn last line, which a
        resume drops and ``scns report`` names.)"""
        line = memoryview((json.dumps(record) + "\n").encode())
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            size = os.fstat(fd).st_size
            try:
                while line:
                    line = line[os.write(fd, line) :]
                os.fsync(fd)
            except OSError as err:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise ckpt.with_filename(err, path) from err
        finally:
            os.close(fd)

    def _progress(self, epoch: int) -> Any:
        if not self.config.train.progress:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.steps_per_epoch * self.config.data.batch_size,
            desc=f"epoch {epoch + 1}/{self.config.train.epochs}",
            unit="img",
            leave=False,
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
        )

    def _print_epoch(self, record: dict[str, Any]) -> None:
        if not self.config.train.progress:
            return
        split = self.eval_set.split
        test = (
            f" {split} top1 {record[f'{split}_top1']:.2f} top5 {record[f'{split}_top5']:.2f}"
            if f"{split}_top1" in record
            else ""
        )
        print(
            f"epoch {record['epoch'] + 1:>3}/{self.config.train.epochs} loss {record['train_loss']:.4f} "
            f"train acc {record['train_acc']:.2f}{test} lr {record['lr']:.4g} "
            f"({record['images_per_s']:.0f} img/s)",
            flush=True,
        )

    def _summary(self, last_eval: EvalResult | None, wall_s: float) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "dataset": self.config.data.dataset,
            "model": self.config.model.name,
            "epochs": self.config.train.epochs,
            "seed": self.config.train.seed,
            "eval_split": self.eval_set.split,
            "bank_prefill_time_s": getattr(self, "prefill_time_s", None),
            "final_top1": last_eval.top1 if last_eval else None,
            "final_top5": last_eval.top5 if last_eval else None,
            "best_top1": self.best_top1 if self.best_top1 > -math.inf else None,
            "wall_time_s_this_session": wall_s,
            "device": str(self.device),
            "nonfinite_skipped": self.nonfinite_skipped,
            "code": self.code,
            **self.objective.summary_info(),
        }


def default_objective_factory(
    config: Config, model: nn.Module, train_set: ImageSet, device: torch.device
) -> Objective:
    """The configured objective (supervised, or distillation from a teacher run)."""
    from scns.train.setup import make_objective

    return make_objective(config, model, train_set, device)
