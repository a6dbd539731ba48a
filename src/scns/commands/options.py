"""Command-line flags that map onto config keys, shared by the commands that start runs."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from scns.config import Config
from scns.models.frozen import TEACHER_MODES


@dataclass(frozen=True)
class Flag:
    """A CLI flag that sets one dotted config key."""

    flag: str
    key: str
    help: str
    type: Any = None
    action: str | None = None
    nargs: str | int | None = None
    const: Any = None


RUN_FLAGS: tuple[Flag, ...] = (
    Flag("--dataset", "data.dataset", "dataset name (see `scns datasets`)"),
    Flag("--data-dir", "data.data_dir", "folder holding the dataset files (default: $SCNS_DATA_DIR)"),
    Flag(
        "--download", "data.download", "download the dataset into --data-dir if missing", action="store_true"
    ),
    Flag("--batch-size", "data.batch_size", "training batch size", type=int),
    Flag(
        "--val-size",
        "data.val_size",
        "hold out this many training images (stratified, fixed by data.val_seed) and train on the rest",
        type=int,
    ),
    Flag("--eval-split", "data.eval_split", "evaluate on: test | val (val never reads the test split)"),
    Flag("--model", "model.name", "architecture (see `scns models`)"),
    Flag("--epochs", "train.epochs", "number of epochs", type=int),
    Flag("--lr", "optim.lr", "base learning rate", type=float),
    Flag("--schedule", "optim.schedule", "multistep | cosine | onecycle | constant"),
    Flag(
        "--milestones",
        "optim.milestones",
        "multistep epochs at which lr is multiplied by gamma",
        type=int,
        nargs="+",
    ),
    Flag("--weight-decay", "optim.weight_decay", "SGD weight decay", type=float),
    Flag("--momentum", "optim.momentum", "SGD momentum", type=float),
    Flag("--nesterov", "optim.nesterov", "use Nesterov momentum", action="store_true"),
    Flag("--label-smoothing", "optim.label_smoothing", "cross-entropy label smoothing", type=float),
    Flag("--seed", "train.seed", "random seed", type=int),
    Flag("--device", "train.device", "auto | cpu | cuda | cuda:N"),
    Flag(
        "--deterministic",
        "train.deterministic",
        "deterministic kernels (exact resume on GPU)",
        action="store_true",
    ),
    Flag("--out-dir", "train.out_dir", "parent folder of run directories"),
    Flag("--name", "train.name", "run directory name (default: generated)"),
    Flag(
        "--log",
        "train.log",
        "metrics sinks besides metrics.jsonl: jsonl | tensorboard (pip install 'scns[tensorboard]')",
    ),
    Flag("--skip-nonfinite", "train.skip_nonfinite", "tolerate up to N steps with a NaN/inf loss", type=int),
)

CONTRAST_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--sampler",
        "contrast.sampler",
        "negative sampler: uniform | class_topk | sample_topk | mixture "
        "(supervised: setting one adds the contrastive term)",
    ),
    Flag(
        "--similarity",
        "contrast.similarity",
        "class similarity for class_topk: glove | wordnet | text | hierarchy | prototypes:RUN_DIR | "
        "confusion:RUN_DIR | teacher:prototypes | teacher:confusion | bank (the memory bank's class "
        "means, recomputed each epoch); chains (wordnet+glove: ties broken by glove) and blends "
        "(glove:0.5+bank:0.5)",
    ),
    Flag(
        "--top-k",
        "contrast.top_k",
        "similar classes (class_topk) or neighbours (sample_topk) to draw from",
        type=int,
    ),
    Flag("--negatives", "contrast.negatives", "negatives per anchor (K)", type=int),
    Flag(
        "--latent-mixup",
        "contrast.latent_mixup",
        "pseudo-negatives per anchor from latent mixup (0: off)",
        type=int,
    ),
    Flag(
        "--mixup-alpha",
        "contrast.mixup_alpha",
        "latent mixup: lam ~ U(0, alpha) with alpha in (0, 0.5], or Beta(alpha, alpha) with --mixup-lam beta",
        type=float,
    ),
    Flag("--mixup-mode", "contrast.mixup_mode", "latent mixup: anchor | negatives"),
    Flag("--mixup-lam", "contrast.mixup_lam", "latent mixup lambda: uniform (legacy) | beta"),
    Flag(
        "--mixup-lam-max",
        "contrast.mixup_lam_max",
        "beta lambda is scaled into [0, this] (< 0.5)",
        type=float,
    ),
    Flag(
        "--mixup-cap",
        "contrast.mixup_cap",
        "drop pseudo-negatives that score above the anchor's positive",
        action="store_true",
    ),
    Flag(
        "--contrast-weight",
        "contrast.weight",
        "weight of the contrastive term (default: supervised 0.5, CRD 0.8)",
        type=float,
    ),
    Flag("--contrast-loss", "contrast.loss", "nce (CRD) | infonce"),
    Flag("--nce-t", "contrast.temperature", "contrastive temperature (default 0.07)", type=float),
    Flag("--embed-dim", "contrast.embed_dim", "embedding size of the contrastive heads", type=int),
    Flag(
        "--positive",
        "contrast.positive",
        "positive: self (same sample's bank entry) | class (a same-class sample)",
    ),
    Flag("--weighting", "contrast.weighting", "class_topk class weighting: uniform | softmax"),
    Flag(
        "--ties",
        "contrast.ties",
        "class_topk: share (classes tied at the k-th place share it; default) | id (legacy: by class id)",
    ),
    Flag(
        "--proposal-beta",
        "contrast.proposal_beta",
        "loss correction for non-uniform negatives, in [0, 1]: 0 none, 1 unbiased for the uniform objective",
        type=float,
    ),
    Flag(
        "--no-bank-prefill",
        "contrast.bank_prefill",
        "start the memory banks random instead of filling them with one pass before training",
        action="store_const",
        const=False,
    ),
    Flag(
        "--mixture-ramp",
        "contrast.mixture_ramp",
        "a mixture's non-uniform shares rise from 0 at epoch START to their fractions at END",
        type=int,
        nargs=2,
    ),
    Flag(
        "--skip-nearest",
        "contrast.sampler_options.sample_topk.skip_nearest",
        "sample_topk: never draw this fraction of each row's nearest neighbours (false-negative guard)",
        type=float,
    ),
    Flag(
        "--knn-source", "contrast.knn_source", "distillation sample_topk table from: bank | teacher_features"
    ),
    Flag("--refresh-every", "contrast.refresh_every", "rebuild sample_topk tables every N epochs", type=int),
    Flag("--bank-dtype", "contrast.bank_dtype", "memory bank storage: float32 | bfloat16 | float16"),
    Flag("--knn-backend", "contrast.knn_backend", "sample_topk table build: torch | faiss"),
    Flag("--knn-index", "contrast.knn_index", "faiss index: flat (exact) | ivf (approximate, large N)"),
    Flag("--mixture", "contrast.mixture", "mixture parts, e.g. uniform:0.5 class_topk:0.5", nargs="+"),
)

DISTILL_FLAGS: tuple[Flag, ...] = (
    Flag("--teacher", "distill.teacher", "teacher run directory (from `scns train`) or checkpoint"),
    Flag(
        "--teacher-model",
        "distill.teacher_model",
        "expected teacher architecture (checked against the checkpoint)",
    ),
    Flag("--student", "model.name", "student architecture (see `scns models`)"),
    Flag("--method", "distill.method", "student | kd | crd | crd+kd"),
    Flag("--kd-temperature", "distill.kd_temperature", "Hinton KD temperature", type=float),
    Flag("--ce-weight", "distill.ce_weight", "cross-entropy weight (default per method)", type=float),
    Flag("--kd-weight", "distill.kd_weight", "KD weight (default per method)", type=float),
    Flag(
        "--teacher-mode",
        "distill.teacher_mode",
        "frozen-teacher path: " + " | ".join(TEACHER_MODES),
    ),
)

TRAIN_FLAGS = (
    RUN_FLAGS + CONTRAST_FLAGS + (Flag("--objective", "train.objective", "supervised (default) | distill"),)
)
DISTILL_COMMAND_FLAGS = tuple(f for f in RUN_FLAGS if f.flag != "--model") + CONTRAST_FLAGS + DISTILL_FLAGS


def add_override_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_run_arguments(parser: argparse.ArgumentParser, flags: tuple[Flag, ...] = RUN_FLAGS) -> None:
    """Add ``--config``, ``--set`` and the given config flags (all default to 'not given')."""
    parser.add_argument("--config", help="YAML preset (see configs/); flags and --set override it")
    add_override_argument(parser, "dotted config override, e.g. --set optim.lr=0.1 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    for flag in flags:
        kwargs: dict[str, Any] = {"help": flag.help, "dest": flag.key.replace(".", "__"), "default": None}
        if flag.action:
            kwargs["action"] = flag.action
            if flag.action == "store_const":
                kwargs["const"] = flag.const
        else:
            kwargs["type"] = flag.type or str
            if flag.nargs:
                kwargs["nargs"] = flag.nargs
        parser.add_argument(flag.flag, **kwargs)


def config_from_args(
    args: argparse.Namespace, flags: tuple[Flag, ...] = RUN_FLAGS, base: Config | None = None
) -> Config:
    """Defaults <- ``--config`` <- flags given <- ``--set`` overrides; data_dir falls back to $SCNS_DATA_DIR."""
    config = base or (Config.load(args.config) if getattr(args, "config", None) else Config())
    given = {f.key: getattr(args, f.key.replace(".", "__")) for f in flags}
    given = {k: v for k, v in given.items() if v is not None}
    config = config.with_overrides(given).with_overrides(getattr(args, "overrides", []))
    if getattr(args, "no_progress", False):
        config = config.with_overrides({"train.progress": False})
    if config.data.data_dir is None and os.environ.get("SCNS_DATA_DIR"):
        config = config.with_overrides({"data.data_dir": os.environ["SCNS_DATA_DIR"]})
    return config
