"""Where one training step's time goes, and how far the step is from the networks' compute floor.

For a named preset (default: resnet32x4 -> resnet8x4 CRD+KD on CIFAR-100, batch 64, K = 16384)
this runs the engine's own training loop (``Trainer._train_epoch``, capped with
``train.max_steps_per_epoch``) and times its real code paths with synchronised clock marks set
by hooks: nothing of the step is re-implemented here. Parts of a step:

* ``data``: the loader's ``next()`` (index gather + batched augmentation);
* ``student_fwd``, ``teacher_fwd``: the two networks' forward passes inside the objective;
* ``sampling``: the negative source (``NegativeSource.forward``);
* ``scoring``: both contrastive terms' forward (bank gather, scores, NCE/InfoNCE);
* ``diagnostics``: the per-step statistics (``step_stats``: similarity means, top-k share,
  hardness histogram);
* ``heads_fwd``: the rest of the objective's forward (CE, KD, embed heads);
* ``contrast_bwd``: backward from the loss to the embed heads' outputs (the contrastive terms'
  backward; autograd runs the nodes created last first, so this is the contrastive terms' part);
* ``heads_bwd``: the rest of the backward down to the student's outputs (CE, KD, embed heads, fc);
* ``student_bwd``: backward through the student's body;
* ``optimizer``: ``optimizer.step()``; ``bank_update``: ``objective.after_step()``;
* ``engine_other``: the rest of the loop (finiteness check, ``zero_grad``, metric meters).

The floor is what the networks alone cost: one step of ``scns train`` of the student (the
``student-alone`` arm: the supervised objective, same batch and data) plus the teacher's forward
measured alone on a training batch (``teacher-fwd`` arms), for each teacher mode. ``ratio`` =
step / floor. ``vs_student`` = step / student-alone step; for ``--method student`` it shows
that the student baseline costs what training the student alone costs (its teacher_fwd is 0).

Arms are run in rounds, A/B/C/A/B/C..., each arm ``--warmup`` + ``--steps`` steps per round
(the warm-up steps are dropped); per arm the mean over a round's steps is taken (so parts add
up to the step), and the rounds' means give the reported median and spread (min-max). ``--agreement N`` compares each
teacher mode with the plain fp32 eager forward on N test images (max abs difference of logits
and features, top-1 agreement). JSON goes to ``--out``, a Markdown table to stdout.

    python benchmarks/step.py --data-dir /tmp/scns-data --rounds 3 --steps 10 --out step.json

Without ``--data-dir`` the data are random images in the dataset's layout with its real class
names (timing does not depend on the pixels); without ``--teacher-ckpt`` the teacher is a
freshly initialised network of the preset's teacher architecture.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import scns.objectives.distill as distill_module
from scns.config import Config
from scns.data import get_spec, load_dataset
from scns.data.augment import BatchTransform
from scns.models import create_model
from scns.models.frozen import PLANS, freeze_for_inference
from scns.train import checkpoint as ckpt
from scns.train.engine import Trainer

DEFAULT_PRESET = "cifar100/resnet32x4-resnet8x4"  # a shipped preset (scns presets)
PARTS = (
    "data",
    "student_fwd",
    "teacher_fwd",
    "sampling",
    "scoring",
    "diagnostics",
    "heads_fwd",
    "contrast_bwd",
    "heads_bwd",
    "student_bwd",
    "optimizer",
    "bank_update",
    "engine_other",
)


# ---------------------------------------------------------------------------- clock marks
class Clock:
    """Timestamps of labelled events, each taken after synchronising the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.events: list[tuple[str, float]] = []
        self.enabled = True

    def mark(self, label: str) -> None:
        if not self.enabled:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.events.append((label, time.perf_counter()))


class TimedLoader:
    """The trainer's loader, marking ``data>`` before and ``data<`` after each ``next()``."""

    def __init__(self, loader: Any, clock: Clock) -> None:
        self._loader = loader
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[Any]:
        it = iter(self._loader)
        while True:
            self._clock.mark("data>")
            try:
                batch = next(it)
            except StopIteration:
                return
            self._clock.mark("data<")
            yield batch


def _span(module: nn.Module | None, clock: Clock, name: str) -> None:
    """Mark ``name>`` / ``name<`` around every forward of ``module``."""
    if module is None:
        return
    module.register_forward_pre_hook(lambda *_: clock.mark(name + ">"))
    module.register_forward_hook(lambda *_: clock.mark(name + "<"))


def _wrap(owner: Any, attr: str, clock: Clock, name: str) -> None:
    """Replace ``owner.attr`` (a callable) by one marking ``name>`` / ``name<`` around each call."""
    inner = getattr(owner, attr, None)
    if inner is None:
        return

    def timed(*args: Any, **kwargs: Any) -> Any:
        clock.mark(name + ">")
        try:
            return inner(*args, **kwargs)
        finally:
            clock.mark(name + "<")

    setattr(owner, attr, timed)


def instrument(trainer: Trainer, clock: Clock) -> None:
    """Hook the trainer's real step: loader, objective and its parts, backward, optimizer, after_step."""
    objective = trainer.objective
    trainer.loader = TimedLoader(trainer.loader, clock)

    def on_output(_module: nn.Module, _inputs: Any, out: Any) -> None:
        clock.mark("fwd<")
        out.loss.register_hook(lambda grad: clock.mark("bwd>"))

    objective.register_forward_pre_hook(lambda *_: clock.mark("fwd>"))
    objective.register_forward_hook(on_output)

    def student_out(_module: nn.Module, _inputs: Any, out: Any) -> None:
        clock.mark("student<")
        for tensor in out:
            if tensor.requires_grad:
                tensor.register_hook(lambda grad: clock.mark("outgrad"))

    objective.model.register_forward_pre_hook(lambda *_: clock.mark("student>"))
    objective.model.register_forward_hook(student_out)
    _span(getattr(objective, "teacher", None), clock, "teacher")
    negatives = getattr(objective, "negatives", None)
    _span(negatives, clock, "sampling")
    _wrap(negatives, "diagnostics", clock, "diag")  # per-step statistics, where the source computes them
    for name in ("contrast", "contrast_s", "contrast_t"):
        _span(getattr(objective, name, None), clock, "scoring")

    def embed_out(_module: nn.Module, _inputs: Any, out: Any) -> None:
        if out.requires_grad:
            out.register_hook(lambda grad: clock.mark("embgrad"))

    for name in ("embed", "embed_s", "embed_t"):
        head = getattr(objective, name, None)
        if head is not None:
            head.register_forward_hook(embed_out)
    trainer.optimizer.register_step_pre_hook(lambda *_: clock.mark("opt>"))
    trainer.optimizer.register_step_post_hook(lambda *_: clock.mark("opt<"))
    _wrap(objective, "after_step", clock, "update")


def _pairs(events: list[tuple[str, float]], name: str) -> float:
    total, start = 0.0, None
    for label, t in events:
        if label == name + ">":
            start = t
        elif label == name + "<" and start is not None:
            total += t - start
            start = None
    return total


def step_parts(events: list[tuple[str, float]]) -> list[dict[str, float]]:
    """Split a clock's events into steps (``data>`` to the next ``data>``) and their parts (seconds)."""
    starts = [i for i, (label, _) in enumerate(events) if label == "data>"]
    steps = []
    for a, b in zip(starts, starts[1:]):
        ev = events[a : b + 1]
        if not any(label == "opt<" for label, _ in ev):
            continue  # a fetch that was not followed by a step (the loop's final break)
        t = dict.fromkeys(PARTS, 0.0)
        t["data"] = _pairs(ev, "data")
        t["student_fwd"] = _pairs(ev, "student")
        t["teacher_fwd"] = _pairs(ev, "teacher")
        t["sampling"] = _pairs(ev, "sampling")
        t["scoring"] = _pairs(ev, "scoring")
        t["diagnostics"] = _pairs(ev, "diag")
        inside = sum(t[k] for k in ("student_fwd", "teacher_fwd", "sampling", "scoring", "diagnostics"))
        t["heads_fwd"] = _pairs(ev, "fwd") - inside
        stamp = {label: time for label, time in ev}  # last occurrence of each label
        bwd, opt = stamp.get("bwd>"), stamp.get("opt>")
        outgrad = stamp.get("outgrad", opt)
        if bwd is not None and opt is not None:
            embgrad = stamp.get("embgrad", bwd)
            t["contrast_bwd"] = embgrad - bwd
            t["heads_bwd"] = outgrad - embgrad
            t["student_bwd"] = opt - outgrad
        t["optimizer"] = _pairs(ev, "opt")
        t["bank_update"] = _pairs(ev, "update")
        total = ev[-1][1] - ev[0][1]
        t["engine_other"] = total - sum(t[k] for k in PARTS if k != "engine_other")
        t["step"] = total
        steps.append(t)
    return steps


# ---------------------------------------------------------------------------- data and teacher
def _class_names(dataset: str) -> tuple[list[str], list[str] | None, dict[str, str] | None]:
    table = json.loads(files("scns.similarity").joinpath("data/cifar_classes.json").read_text())
    if dataset == "cifar100":
        return table["cifar100"], table["cifar100_coarse"], table["cifar100_fine_to_coarse"]
    if dataset == "cifar10":
        return table["cifar10"], None, None
    raise SystemExit(f"synthetic data covers cifar10 and cifar100, not '{dataset}'; pass --data-dir")


def write_synthetic(dataset: str, root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Random uint8 images and labels in the official CIFAR pickle layout, with the real class names."""
    names, coarse_names, fine_to_coarse = _class_names(dataset)
    rng = np.random.default_rng(seed)
    folder = root / ("cifar-100-python" if dataset == "cifar100" else "cifar-10-batches-py")
    folder.mkdir(parents=True, exist_ok=True)

    def split(n: int) -> dict[bytes, Any]:
        labels = rng.integers(0, len(names), n)
        out: dict[bytes, Any] = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        if dataset == "cifar100":
            out[b"fine_labels"] = labels.tolist()
            out[b"coarse_labels"] = [coarse_names.index(fine_to_coarse[names[c]]) for c in labels]
        else:
            out[b"labels"] = labels.tolist()
        return out

    if dataset == "cifar100":
        files_ = {"train": split(n_train), "test": split(n_test)}
        files_["meta"] = {
            b"fine_label_names": [n.encode() for n in names],
            b"coarse_label_names": [n.encode() for n in coarse_names],
        }
    else:
        per = -(-n_train // 5)
        files_ = {f"data_batch_{i}": split(per) for i in range(1, 6)}
        files_["test_batch"] = split(n_test)
        files_["batches.meta"] = {b"label_names": [n.encode() for n in names]}
    for name, obj in files_.items():
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f)


def write_random_teacher(config: Config, path: Path) -> None:
    """A freshly initialised teacher saved as `scns train` saves one (the timing needs no training)."""
    train_set = load_dataset(config.data.dataset, config.data.data_dir, "train")
    arch = config.distill.teacher_model or "resnet32x4"
    torch.manual_seed(0)
    model = create_model(arch, num_classes=len(train_set.classes))
    teacher_config = config.with_overrides({"model.name": arch, "train.objective": "supervised"})
    ckpt.save_checkpoint(
        path,
        {
            "config": teacher_config.to_dict(),
            "num_classes": len(train_set.classes),
            "classes": list(train_set.classes),
            "model": model.state_dict(),
            "epoch": 0,
        },
    )


# ---------------------------------------------------------------------------- arms
class Arm:
    """One configuration timed in every round: a trainer (a distillation mode or the student alone)
    or the teacher's forward alone. ``run(round)`` returns that round's timed steps."""

    def __init__(
        self, name: str, run: Callable[[int], list[dict[str, float]]], clock: Clock | None = None
    ) -> None:
        self.name, self.run, self.clock = name, run, clock
        self.rounds: list[list[dict[str, float]]] = []


class DiagnosticsRouter:
    """Marks ``diag>``/``diag<`` around a module-level ``step_stats`` (where the distillation
    objective calls one) on the clock of the arm that is running."""

    def __init__(self) -> None:
        self.clock: Clock | None = None

    def install(self) -> Callable[[], None]:
        """Wrap the module-level function; returns the function that puts the original back."""
        original = getattr(distill_module, "step_stats", None)
        if original is None:
            return lambda: None

        def timed(*args: Any, **kwargs: Any) -> Any:
            clock = self.clock
            if clock is None:
                return original(*args, **kwargs)
            clock.mark("diag>")
            try:
                return original(*args, **kwargs)
            finally:
                clock.mark("diag<")

        distill_module.step_stats = timed

        def restore() -> None:
            distill_module.step_stats = original

        return restore


def trainer_arm(name: str, config: Config, run_dir: Path, warmup: int, steps: int) -> tuple[Arm, Trainer]:
    config = config.with_overrides({"train.max_steps_per_epoch": warmup + steps, "train.progress": False})
    trainer = Trainer.create(config, run_dir)
    trainer.build()
    if len(trainer.loader) < warmup + steps + 1:
        raise SystemExit(f"{len(trainer.loader)} batches per epoch cannot hold {warmup + steps} steps")
    clock = Clock(trainer.device)
    instrument(trainer, clock)
    epoch = [0]

    def run(_round: int) -> list[dict[str, float]]:
        clock.events = []
        trainer._train_epoch(epoch[0])
        epoch[0] += 1
        return step_parts(clock.events)[warmup:]

    return Arm(name, run, clock), trainer


def teacher_arm(name: str, teacher: nn.Module, x: torch.Tensor, warmup: int, steps: int) -> Arm:
    clock = Clock(x.device)

    def run(_round: int) -> list[dict[str, float]]:
        out = []
        for i in range(warmup + steps):
            clock.events = []
            clock.mark("t>")
            teacher(x)
            clock.mark("t<")
            if i >= warmup:
                out.append({"step": clock.events[1][1] - clock.events[0][1]})
        return out

    return Arm(name, run)


def summarise(arm: Arm) -> dict[str, Any]:
    """Per key: mean over each round's steps (parts add up to the step; a part run on some steps
    only, such as sampled diagnostics, counts at its average cost), then the median and min/max
    over rounds (seconds)."""
    return {key: spread(round_means(arm, key)) for key in arm.rounds[0][0]}


def round_means(arm: Arm, key: str) -> list[float]:
    """Mean of ``key`` over each round's timed steps."""
    return [statistics.fmean(s[key] for s in steps) for steps in arm.rounds]


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@torch.no_grad()
def agreement(
    reference: nn.Module, teachers: dict[str, nn.Module], config: Config, n: int, batch: int
) -> dict[str, dict[str, float]]:
    """Each mode against the plain fp32 forward on the first ``n`` test images."""
    test = load_dataset(config.data.dataset, config.data.data_dir, "test")
    device = next(reference.parameters()).device
    transform = BatchTransform.from_spec(get_spec(config.data.dataset), train=False)
    stats = {m: {"max_abs_logits": 0.0, "max_abs_features": 0.0, "top1_disagree": 0} for m in teachers}
    total = min(n, len(test.labels))
    for start in range(0, total, batch):
        x = transform(test.images[start : min(total, start + batch)].to(device))
        ref_logits, ref_features = reference(x)
        for mode, teacher in teachers.items():
            logits, features = teacher(x)
            s = stats[mode]
            s["max_abs_logits"] = max(s["max_abs_logits"], (logits.float() - ref_logits).abs().max().item())
            s["max_abs_features"] = max(
                s["max_abs_features"], (features.float() - ref_features).abs().max().item()
            )
            s["top1_disagree"] += int((logits.argmax(1) != ref_logits.argmax(1)).sum())
    for s in stats.values():
        s["images"] = total
        s["top1_agree"] = 1.0 - s["top1_disagree"] / max(1, total)
    return stats


# ---------------------------------------------------------------------------- report
def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    ms = 1000.0
    lines = [
        f"### One training step: {meta['student']} <- {meta['teacher']}, {meta['method']}, batch "
        f"{meta['batch_size']}, K = {meta['negatives']}, sampler {meta['sampler']}",
        "",
        f"{meta['device']}, torch {meta['torch']}, {meta['threads']} threads, {meta['rounds']} rounds x "
        f"{meta['steps']} steps (median over rounds of each round's mean, ms; range over rounds); data: {meta['data']}; "
        f"teacher: {meta['teacher_weights']}; load average at start {meta['load_avg_start']}, end "
        f"{meta['load_avg_end']}.",
        "",
    ]
    modes = [m for m in result["modes"]]
    head = "| part | " + " | ".join(modes) + " |"
    lines += [head, "|---" * (len(modes) + 1) + "|"]

    def cell(entry: dict[str, float] | None) -> str:
        if entry is None:
            return "-"
        return f"{entry['median'] * ms:.1f} ({entry['min'] * ms:.0f}-{entry['max'] * ms:.0f})"

    for part in (*PARTS, "step"):
        row = [cell(result["modes"][m]["step_parts"].get(part)) for m in modes]
        label = f"**{part}**" if part == "step" else part
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    term = ("sampling", "scoring", "contrast_bwd", "bank_update")
    lines.append(
        "| contrastive term (sampling + scoring + contrast_bwd + bank_update) | "
        + " | ".join(
            f"{sum(result['modes'][m]['step_parts'][k]['median'] for k in term) * ms:.1f}" for m in modes
        )
        + " |"
    )
    for key, label in (
        ("teacher_alone", "teacher forward alone"),
        ("floor", "floor (student alone + teacher alone)"),
    ):
        lines.append(f"| {label} | " + " | ".join(cell(result["modes"][m].get(key)) for m in modes) + " |")
    lines.append(
        "| student-alone step | " + " | ".join(cell(result["student_alone"]["step"]) for _ in modes) + " |"
    )
    lines.append(
        "| **step / floor** | " + " | ".join(f"{result['modes'][m]['ratio']:.3f}" for m in modes) + " |"
    )
    lines.append(
        "| step / student-alone | "
        + " | ".join(f"{result['modes'][m]['vs_student']:.3f}" for m in modes)
        + " |"
    )
    if "eager" in result["modes"]:
        base = result["modes"]["eager"]["teacher_alone"]
        if base is not None:
            lines.append(
                "| teacher speed-up vs eager | "
                + " | ".join(
                    f"{base['median'] / result['modes'][m]['teacher_alone']['median']:.2f}x"
                    if result["modes"][m]["teacher_alone"]
                    else "-"
                    for m in modes
                )
                + " |"
            )
    if result.get("agreement"):
        lines += [
            "",
            "| teacher mode vs plain fp32 forward | images | max abs logits | max abs features | top-1 agree |",
        ]
        lines.append("|---|---|---|---|---|")
        for mode, s in result["agreement"].items():
            lines.append(
                f"| {mode} | {s['images']} | {s['max_abs_logits']:.2e} | {s['max_abs_features']:.2e} | "
                f"{s['top1_agree']:.4f} ({s['top1_disagree']} differ) |"
            )
    return "\n".join(lines)


def _loadavg() -> str:
    try:
        return "{:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------- main
def build_config(args: argparse.Namespace, data_dir: str, teacher_path: str) -> Config:
    overrides: dict[str, Any] = {
        "data.batch_size": args.batch_size,
        "data.data_dir": data_dir,
        "contrast.negatives": args.negatives,
        "distill.method": args.method,
        "distill.teacher": teacher_path,
        "train.device": args.device,
        "train.progress": False,
        "train.objective": "distill",
    }
    if args.student:
        overrides["model.name"] = args.student
    if args.teacher:
        overrides["distill.teacher_model"] = args.teacher
    if args.sampler:
        overrides["contrast.sampler"] = args.sampler
    if args.similarity:
        overrides["contrast.similarity"] = args.similarity
    config = Config.load(args.preset).with_overrides(overrides).with_overrides(args.set)
    return config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default=DEFAULT_PRESET, help="a distillation preset (YAML)")
    p.add_argument("--data-dir", help="dataset root (e.g. /tmp/scns-data); synthetic data when absent")
    p.add_argument(
        "--teacher-ckpt", help="trained teacher (run dir or checkpoint); random weights when absent"
    )
    p.add_argument("--student", help="student architecture (default: the preset's)")
    p.add_argument("--teacher", help="teacher architecture (default: the preset's distill.teacher_model)")
    p.add_argument("--method", default="crd+kd", help="student | kd | crd | crd+kd (default crd+kd)")
    p.add_argument("--sampler", help="negative sampler (default: the preset's)")
    p.add_argument(
        "--similarity",
        default="hierarchy",
        help="class similarity source (default hierarchy: shipped with scns, needs no extra). The source "
        "decides how many classes class_topk keeps, and so its candidate lists' length and a draw's cost: "
        "hierarchy's ties keep all 99 other CIFAR-100 classes, wordnet+glove 10 (BENCHMARKS.md s. 2)",
    )
    p.add_argument("--negatives", type=int, default=16384, help="K (default 16384)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--modes", default="eager,fused,fused-cl", help=f"teacher modes, from {', '.join(PLANS)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="timed steps per arm and round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per arm and round")
    p.add_argument(
        "--agreement", type=int, default=512, help="test images for the mode-vs-eager check (0: skip)"
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", nargs="*", default=[], help="extra dotted overrides, e.g. contrast.top_k=5")
    p.add_argument("--out", default="step.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in PLANS]
    if unknown:
        raise SystemExit(f"unknown teacher modes {unknown}; choose from {', '.join(PLANS)}")
    load_start = _loadavg()
    with tempfile.TemporaryDirectory(prefix="scns-step-") as tmp:
        tmp_path = Path(tmp)
        data_dir = args.data_dir
        preset = Config.load(args.preset)
        if data_dir is None:
            data_dir = str(tmp_path / "data")
            write_synthetic(
                preset.data.dataset, Path(data_dir), n_train=50_000, n_test=max(args.agreement, 1)
            )
        teacher_path = args.teacher_ckpt or str(tmp_path / "teacher.pt")
        config = build_config(args, data_dir, teacher_path)
        if args.teacher_ckpt is None:
            write_random_teacher(config, Path(teacher_path))

        arms: list[Arm] = []
        student_cfg = config.with_overrides({"train.objective": "supervised", "contrast.sampler": None})
        student_arm, _ = trainer_arm(
            "student-alone", student_cfg, tmp_path / "student", args.warmup, args.steps
        )
        arms.append(student_arm)
        teachers: dict[str, nn.Module] = {}
        uses_teacher = True
        for mode in modes:
            arm, trainer = trainer_arm(
                f"step:{mode}",
                config.with_overrides({"distill.teacher_mode": mode}),
                tmp_path / f"run-{mode}",
                args.warmup,
                args.steps,
            )
            arms.append(arm)
            teachers[mode] = trainer.objective.teacher
            uses_teacher = trainer.objective.uses_teacher
            x = next(iter(trainer.loader._loader)).x  # a training batch, as the step sees it
            arms.append(teacher_arm(f"teacher:{mode}", teachers[mode], x, args.warmup, args.steps))
        router = DiagnosticsRouter()
        restore = router.install()
        try:
            for r in range(args.rounds):
                for arm in arms:  # A/B/C/A/B/C...
                    router.clock = arm.clock
                    arm.rounds.append(arm.run(r))
                print(f"round {r + 1}/{args.rounds} done (load {_loadavg()})", flush=True)
        finally:
            restore()

        agree: dict[str, Any] = {}
        if args.agreement > 0:
            reference_net, _ = ckpt.load_trained_model(teacher_path, trainer.device)
            reference = freeze_for_inference(reference_net, trainer.device, "eager")
            agree = agreement(reference, teachers, config, args.agreement, args.batch_size)

    student = summarise(student_arm)
    result: dict[str, Any] = {"student_alone": student, "modes": {}, "agreement": agree}
    for mode in modes:
        step = summarise(next(a for a in arms if a.name == f"step:{mode}"))
        teacher_arm_ = next(a for a in arms if a.name == f"teacher:{mode}")
        # the floor of round r: the student alone plus (when the method runs it) the teacher alone
        floors = [
            a + (b if uses_teacher else 0.0)
            for a, b in zip(round_means(student_arm, "step"), round_means(teacher_arm_, "step"))
        ]
        floor = spread(floors)
        result["modes"][mode] = {
            "step_parts": step,
            "teacher_alone": summarise(teacher_arm_)["step"],
            "floor": floor,
            "ratio": step["step"]["median"] / floor["median"],
            "vs_student": step["step"]["median"] / student["step"]["median"],
        }
    result["meta"] = {
        "preset": args.preset,
        "student": config.model.name,
        "teacher": config.distill.teacher_model or "(from checkpoint)",
        "method": config.distill.method,
        "batch_size": config.data.batch_size,
        "negatives": config.contrast.negatives,
        "sampler": config.contrast.sampler,
        "similarity": config.contrast.similarity,
        "data": args.data_dir or "synthetic (random images, real class names)",
        "teacher_weights": args.teacher_ckpt or "random init",
        "device": f"{args.device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "steps": args.steps,
        "warmup": args.warmup,
        "load_avg_start": load_start,
        "load_avg_end": _loadavg(),
        "raw": {arm.name: arm.rounds for arm in arms},
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
