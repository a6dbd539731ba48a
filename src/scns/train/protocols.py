"""Named experiment grids: which (setting, method, sampler, seed) runs make up a protocol.

A protocol is a list of :class:`Cell`s. Each cell is one training run described by config overrides
on top of its setting's base; cells may depend on another cell (a distillation teacher). A cell
can belong to several settings (the K=4096 runs of the negatives-budget sweep are the supervised
grid's runs), in which case it is listed once and run once.

Protocols:
- ``cpu-quick``: fits a 2-core CPU over several sittings (see BENCHMARKS.md for its wall time); its
  last cells repeat the supervised uniform runs with a bfloat16 memory bank (the ``bank_dtype`` setting).
- ``gpu``: one GPU, one seed, CRD schedule shortened: 5.5 min on an H200 with six workers sharing it
  (benchmarks/results/gpu/RUN.md).
- ``paper``: the full CRD-schedule grid of every preset pair on CIFAR-100 and Tiny-ImageNet-200;
  documented and runnable, but sized for a multi-GPU user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from scns.config import Config, ContrastConfig

SETTINGS = ("supervised", "distill", "budget", "bank_dtype")


@dataclass(frozen=True)
class Cell:
    """One run of a grid.

    Attributes:
        name: run directory name, unique in the protocol.
        settings: the report tables this run belongs to.
        method: label in the report (e.g. "class_topk (glove)").
        seed: training seed.
        overrides: dotted config overrides for this run.
        depends_on: name of a cell whose run must finish first (its directory becomes the teacher).
        negatives: K, for the budget sweep's x-axis (None for runs without a contrastive term).
    """

    name: str
    settings: tuple[str, ...]
    method: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)
    depends_on: str | None = None
    negatives: int | None = None


# ----------------------------------------------------------------------------- building blocks
def _supervised_methods(mixup: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("cross-entropy", {}),
        ("uniform", {"contrast.sampler": "uniform"}),
        ("class_topk (glove)", {"contrast.sampler": "class_topk", "contrast.similarity": "glove"}),
        ("class_topk (wordnet)", {"contrast.sampler": "class_topk", "contrast.similarity": "wordnet"}),
        ("sample_topk", {"contrast.sampler": "sample_topk"}),
        ("uniform + mixup", {"contrast.sampler": "uniform", "contrast.latent_mixup": mixup}),
        (
            "class_topk (glove) + mixup",
            {
                "contrast.sampler": "class_topk",
                "contrast.similarity": "glove",
                "contrast.latent_mixup": mixup,
            },
        ),
    ]


def _distill_methods(mixup: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("student", {"distill.method": "student"}),
        ("kd", {"distill.method": "kd"}),
        ("crd uniform", {"distill.method": "crd", "contrast.sampler": "uniform"}),
        (
            "crd class_topk (wordnet)",
            {"distill.method": "crd", "contrast.sampler": "class_topk", "contrast.similarity": "wordnet"},
        ),
        ("crd sample_topk", {"distill.method": "crd", "contrast.sampler": "sample_topk"}),
        (
            "crd class_topk (wordnet) + mixup",
            {
                "distill.method": "crd",
                "contrast.sampler": "class_topk",
                "contrast.similarity": "wordnet",
                "contrast.latent_mixup": mixup,
            },
        ),
    ]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").replace("--", "-").replace("--", "-")


def supervised_cells(base: dict[str, Any], seeds: list[int], k: int, mixup: int, prefix: str) -> list[Cell]:
    """The supervised grid: every method x seed, with K negatives."""
    cells = []
    for method, overrides in _supervised_methods(mixup):
        contrastive = "contrast.sampler" in overrides
        for seed in seeds:
            cells.append(
                Cell(
                    name=f"{prefix}-{_slug(method)}-k{k}-s{seed}"
                    if contrastive
                    else f"{prefix}-{_slug(method)}-s{seed}",
                    settings=("supervised",),
                    method=method,
                    seed=seed,
                    overrides={**base, **overrides, "contrast.negatives": k, "train.seed": seed},
                    negatives=k if contrastive else None,
                )
            )
    return cells


def budget_cells(base: dict[str, Any], seeds: list[int], ks: list[int], prefix: str) -> list[Cell]:
    """Uniform vs class_topk (glove) at each K."""
    cells = []
    for method, overrides in _supervised_methods(0)[1:3]:
        for k in ks:
            for seed in seeds:
                cells.append(
                    Cell(
                        name=f"{prefix}-{_slug(method)}-k{k}-s{seed}",
                        settings=("budget",),
                        method=method,
                        seed=seed,
                        overrides={**base, **overrides, "contrast.negatives": k, "train.seed": seed},
                        negatives=k,
                    )
                )
    return cells


def bank_dtype_cells(cells: list[Cell], method: str, dtype: str) -> list[Cell]:
    """``method``'s cells again with the memory bank stored in ``dtype``, next to the float32 originals.

    Both belong to the ``bank_dtype`` setting, so the report pairs them by seed.
    """
    out = []
    for cell in cells:
        if cell.method != method:
            continue
        out.append(replace(cell, settings=("bank_dtype",)))
        out.append(
            replace(
                cell,
                name=cell.name.replace(_slug(method), f"{_slug(method)}-{dtype}-bank", 1),
                settings=("bank_dtype",),
                method=f"{method} ({dtype} bank)",
                overrides={**cell.overrides, "contrast.bank_dtype": dtype},
            )
        )
    return out


def distill_cells(
    teacher: Cell, base: dict[str, Any], seeds: list[int], mixup: int, prefix: str
) -> list[Cell]:
    """Every distillation method x seed against one teacher cell."""
    cells = []
    for method, overrides in _distill_methods(mixup):
        for seed in seeds:
            cells.append(
                Cell(
                    name=f"{prefix}-{_slug(method)}-s{seed}",
                    settings=("distill",),
                    method=method,
                    seed=seed,
                    overrides={**base, **overrides, "train.objective": "distill", "train.seed": seed},
                    depends_on=teacher.name,
                    negatives=base.get("contrast.negatives", 16384) if method.startswith("crd") else None,
                )
            )
    return cells


def merge_cells(*groups: list[Cell]) -> list[Cell]:
    """Concatenate cell lists; a cell named twice is run once and belongs to every setting listed."""
    merged: dict[str, Cell] = {}
    for group in groups:
        for cell in group:
            if cell.name in merged:
                known = merged[cell.name]
                if known.overrides != cell.overrides:
                    raise ValueError(f"grid cell {cell.name} is defined twice with different overrides")
                merged[cell.name] = replace(
                    known, settings=tuple(dict.fromkeys(known.settings + cell.settings))
                )
            else:
                merged[cell.name] = cell
    return list(merged.values())


# ----------------------------------------------------------------------------- protocols
CPU_SUPERVISED_BASE: dict[str, Any] = {
    "data.dataset": "cifar10",
    "data.batch_size": 128,
    "model.name": "resnet8",
    "optim.lr": 0.1,
    "optim.schedule": "onecycle",
    "optim.weight_decay": 5e-4,
    "train.epochs": 15,
    "contrast.similarity": "glove",  # also for uniform runs: logs the share of negatives from the top-k classes
    "contrast.top_k": 3,
}
# Distillation runs log the share of negatives from the top-k classes by WordNet (the similarity of
# their class_topk cells), whatever their sampler, so the share compares across methods.
DISTILL_SIMILARITY = "wordnet"
# sample_topk neighbours and refresh for CIFAR-10 (table N x 1024 int32 = 205 MB)
_SAMPLE_TOPK = {"contrast.refresh_every": 5}


def _with_sample_topk_options(cells: list[Cell], top_k: int) -> list[Cell]:
    """sample_topk cells get ``top_k`` neighbours; their logged top-k class share keeps counting the
    class-level ``top_k`` of the other cells, so the share is comparable across methods."""
    out = []
    for cell in cells:
        if cell.overrides.get("contrast.sampler") == "sample_topk":
            overrides = {**cell.overrides, **_SAMPLE_TOPK, "contrast.top_k": top_k}
            if cell.overrides.get("contrast.similarity"):  # the share counts classes most similar by it
                overrides["contrast.share_top_k"] = cell.overrides.get("contrast.top_k", ContrastConfig.top_k)
            cell = replace(cell, overrides=overrides)
        out.append(cell)
    return out


#: The negatives as the cpu-quick and gpu grids ran them (before the calibrated defaults): class_topk
#: ties cut by class id, random memory banks at the start, sample_topk drawing with replacement and,
#: in distillation, building its table once from the teacher's raw features. Those protocols keep
#: them so their committed results can be rerun.
LEGACY_NEGATIVES: dict[str, Any] = {
    "contrast.ties": "id",
    "contrast.bank_prefill": False,
    "contrast.knn_source": "teacher_features",
    "contrast.sampler_options.sample_topk.with_replacement": True,
}


def legacy_negatives(cells: list[Cell]) -> list[Cell]:
    """``cells`` with :data:`LEGACY_NEGATIVES` under their own overrides (teachers unchanged)."""
    return [
        cell
        if "teacher" in cell.settings
        else replace(cell, overrides={**LEGACY_NEGATIVES, **cell.overrides})
        for cell in cells
    ]


def teacher_cell(dataset: str, model: str, batch_size: int, epochs: int) -> Cell:
    """A teacher trained once per grid with a one-cycle schedule (cached in the grid directory)."""
    return Cell(
        name=f"{'c100' if dataset == 'cifar100' else dataset}-teacher-{model}",
        settings=("teacher",),
        method="teacher",
        seed=0,
        overrides={
            "data.dataset": dataset,
            "data.batch_size": batch_size,
            "model.name": model,
            "optim.lr": 0.1,
            "optim.schedule": "onecycle",
            "train.epochs": epochs,
            "train.seed": 0,
        },
    )


def short_distill_base(dataset: str, student: str, teacher: str, epochs: int) -> dict[str, Any]:
    """Distillation with CRD's K, batch and lr on a shortened one-cycle schedule."""
    return {
        "data.dataset": dataset,
        "data.batch_size": 64,
        "model.name": student,
        "optim.lr": 0.05,
        "optim.schedule": "onecycle",
        "train.epochs": epochs,
        "contrast.negatives": 16384,
        "contrast.top_k": 10,
        "contrast.similarity": DISTILL_SIMILARITY,
        "distill.teacher_model": teacher,
    }


def cpu_quick() -> list[Cell]:
    sup = _with_sample_topk_options(
        supervised_cells(CPU_SUPERVISED_BASE, [0, 1, 2], 4096, 256, "c10-resnet8"), 1024
    )
    budget = budget_cells(CPU_SUPERVISED_BASE, [0, 1], [256, 1024, 4096, 16384], "c10-resnet8")
    teacher = teacher_cell("cifar100", "resnet20", batch_size=128, epochs=15)
    distill_base = short_distill_base("cifar100", "resnet8", "resnet20", epochs=4)
    dist = _with_sample_topk_options(
        distill_cells(teacher, distill_base, [0, 1], 256, "c100-resnet20-resnet8"), 1024
    )
    precision = bank_dtype_cells(sup, "uniform", "bfloat16")
    return legacy_negatives(merge_cells(sup, budget, [teacher], dist, precision))


def gpu() -> list[Cell]:
    """One GPU, minutes: resnet56->resnet20 with a shortened CRD schedule, and the CIFAR-10 supervised grid."""
    teacher = teacher_cell("cifar100", "resnet56", batch_size=256, epochs=15)
    distill_base = short_distill_base("cifar100", "resnet20", "resnet56", epochs=6)
    sup_base = {**CPU_SUPERVISED_BASE, "model.name": "resnet20", "data.batch_size": 256, "train.epochs": 8}
    dist = _with_sample_topk_options(
        distill_cells(teacher, distill_base, [0], 256, "c100-resnet56-resnet20"), 1024
    )
    sup = _with_sample_topk_options(supervised_cells(sup_base, [0], 4096, 256, "c10-resnet20"), 1024)
    return legacy_negatives(merge_cells([teacher], dist, sup))


#: The paper grid's pairs: shipped presets (``scns presets``), each with its teacher's preset
#: ``<dataset>/teacher-<teacher>``; the schedule, batch, lr and K come from the presets alone.
PAPER_PRESETS = (
    "cifar100/resnet32x4-resnet8x4",
    "cifar100/wrn_40_2-wrn_16_2",
    "cifar100/resnet56-resnet20",
    "cifar100/vgg13-vgg8",
    "cifar100/ResNet50-MobileNetV2",
    "cifar100/resnet32x4-ShuffleV2",
    "tiny_imagenet/ResNet18-MobileNetV2",
)

#: Keys a preset holds that a grid sets itself: the run's name and teacher location, and the method.
_GRID_OWNED_KEYS = ("train.name", "distill.teacher", "distill.method", "contrast.sampler")


def preset_overrides(name: str) -> dict[str, Any]:
    """The shipped preset ``name`` as dotted overrides: every key whose value differs from the
    defaults, less the keys a grid sets itself (:data:`_GRID_OWNED_KEYS`)."""
    preset, defaults = Config.load(name).to_dict(), Config().to_dict()
    return {
        f"{section}.{key}": value
        for section, values in preset.items()
        for key, value in values.items()
        if value != defaults[section][key] and f"{section}.{key}" not in _GRID_OWNED_KEYS
    }


def preset_pair(name: str) -> tuple[Cell, dict[str, Any]]:
    """A distillation preset's teacher cell (from its teacher's preset) and its student base overrides."""
    student = preset_overrides(name)
    teacher_model = student["distill.teacher_model"]
    folder = name.split("/")[0]
    teacher = Cell(
        name=f"{student['data.dataset']}-teacher-{teacher_model}",
        settings=("teacher",),
        method="teacher",
        seed=0,
        overrides={**preset_overrides(f"{folder}/teacher-{teacher_model}"), "train.seed": 0},
    )
    return teacher, student


def paper() -> list[Cell]:
    """The full CRD schedule (240 epochs) for every preset pair, 3 seeds: for a multi-GPU user."""
    groups: list[list[Cell]] = []
    for name in PAPER_PRESETS:
        teacher, base = preset_pair(name)
        prefix = f"{base['data.dataset']}-{base['distill.teacher_model']}-{base['model.name']}"
        groups.append([teacher])
        groups.append(_with_sample_topk_options(distill_cells(teacher, base, [0, 1, 2], 256, prefix), 1024))
    return merge_cells(*groups)


def with_seeds(cells: list[Cell], seeds: list[int]) -> list[Cell]:
    """The protocol's runs for ``seeds`` instead of its own: every run that differs only by seed becomes
    one run per seed in ``seeds``; teachers (trained once per grid) are kept as they are."""
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
    out: list[Cell] = []
    stems: set[str] = set()
    for cell in cells:
        if "teacher" in cell.settings:
            out.append(cell)
            continue
        suffix = f"-s{cell.seed}"
        if not cell.name.endswith(suffix):
            raise ValueError(f"grid cell {cell.name} does not end in its seed ({suffix}); cannot re-seed it")
        stem = cell.name[: -len(suffix)]
        if stem in stems:
            continue
        stems.add(stem)
        out.extend(
            replace(cell, name=f"{stem}-s{seed}", seed=seed, overrides={**cell.overrides, "train.seed": seed})
            for seed in seeds
        )
    return out


#: The decisive experiment's held-out split: 5,000 CIFAR-100 training images (50 per class), the same for
#: the teacher and every student, so settings are chosen without reading the test split.
DECISIVE_SPLIT = {"data.val_size": 5000, "data.val_seed": 0}


def decisive() -> list[Cell]:
    """The decisive experiment (BENCHMARKS.md s. 8): a real CIFAR-100 teacher trained on 45,000 images
    and evaluated on the 5,000 held out (the test split is read only by the pre-registered runs).

    resnet32 rather than resnet56: every student step runs the teacher forward (69 against 125
    MFLOPs per image), and the grid's budget is CPU-hours on 2 cores."""
    teacher = Cell(
        name="c100-teacher-resnet32",
        settings=("teacher",),
        method="teacher",
        seed=0,
        overrides={
            **DECISIVE_SPLIT,
            "data.dataset": "cifar100",
            "data.batch_size": 128,
            "data.eval_split": "val",
            "model.name": "resnet32",
            "optim.lr": 0.1,
            "optim.schedule": "cosine",
            "optim.weight_decay": 5e-4,
            "train.epochs": 60,
            "train.seed": 0,
        },
    )
    main = decisive_main(teacher, DECISIVE_BEST_CLASS_ARM) if DECISIVE_BEST_CLASS_ARM else []
    pilot = decisive_pilot(teacher)
    # workers take cells in list order: the pilot cells that decide something (the regime pair, the
    # class-level candidates), then the main grid, then the pilot's informational cells
    deciding = [c for c in pilot if c.method in (*PILOT_REGIME_ARMS, *CLASS_LEVEL_CANDIDATES)]
    informational = [c for c in pilot if c not in deciding]
    return [teacher, *deciding, *main, *informational]


#: The decisive students: resnet8 from the resnet32 teacher, CRD's batch and lr, a cosine schedule
#: long enough for the banks to mature (every row is refreshed once an epoch).
DECISIVE_STUDENT = {
    **DECISIVE_SPLIT,
    "data.dataset": "cifar100",
    "data.batch_size": 64,
    "model.name": "resnet8",
    "optim.lr": 0.05,
    "optim.schedule": "cosine",
    "optim.weight_decay": 5e-4,
    "train.epochs": 20,
    "train.objective": "distill",
    "distill.teacher_model": "resnet32",
    "contrast.negatives": 16384,
    "contrast.top_k": 10,
    "contrast.similarity": "wordnet+glove",  # logs the top-k share for every arm, ties broken by GloVe
}

#: Pilot arms (label -> overrides on DECISIVE_STUDENT): the candidates the pre-registered grid picks
#: from, each evaluated on the validation split (BENCHMARKS.md s. 8 logs what each showed).
PILOT_ARMS: dict[str, dict[str, Any]] = {
    "kd": {"distill.method": "kd"},
    "crd+kd uniform": {"distill.method": "crd+kd", "contrast.sampler": "uniform"},
    "crd+kd class_topk wordnet+glove": {"distill.method": "crd+kd", "contrast.sampler": "class_topk"},
    "crd+kd class_topk wordnet+glove beta1": {
        "distill.method": "crd+kd",
        "contrast.sampler": "class_topk",
        "contrast.proposal_beta": 1.0,
    },
    "crd+kd mixture ramp teacher:confusion": {
        "distill.method": "crd+kd",
        "contrast.sampler": "mixture",
        "contrast.similarity": "teacher:confusion",
        "contrast.mixture": ["uniform:0.5", "class_topk:0.5"],
        "contrast.mixture_ramp": [2, 10],
    },
    "crd+kd sample_topk skip2%": {
        "distill.method": "crd+kd",
        "contrast.sampler": "sample_topk",
        "contrast.negatives": 4096,
        "contrast.top_k": 4096,
        "contrast.share_top_k": 10,
        "contrast.sampler_options.sample_topk.skip_nearest": 0.02,
    },
    "crd+kd uniform + mixup beta cap": {
        "distill.method": "crd+kd",
        "contrast.sampler": "uniform",
        "contrast.latent_mixup": 256,
        "contrast.mixup_lam": "beta",
        "contrast.mixup_alpha": 2.0,
        "contrast.mixup_cap": True,
    },
    "crd+kd class_topk wordnet+glove k1024": {
        "distill.method": "crd+kd",
        "contrast.sampler": "class_topk",
        "contrast.negatives": 1024,
    },
    # informational, not a candidate: the same top-10 machinery over randomly chosen classes (its
    # logged top-k share counts those random classes, so it reads 1 by construction)
    "crd+kd class_topk random (control)": {
        "distill.method": "crd+kd",
        "contrast.sampler": "class_topk",
        "contrast.similarity": "random",
    },
}


def arm_cells(
    arms: dict[str, dict[str, Any]],
    base: dict[str, Any],
    seeds: tuple[int, ...],
    prefix: str,
    setting: str,
    teacher: Cell,
) -> list[Cell]:
    """One distillation cell per arm (label -> overrides on ``base``) and seed, named
    ``<prefix>-<arm>-s<seed>``, each depending on ``teacher``."""
    cells = []
    for label, overrides in arms.items():
        contrastive = "contrast.sampler" in overrides
        for seed in seeds:
            cells.append(
                Cell(
                    name=f"{prefix}-{_slug(label)}-s{seed}",
                    settings=(setting,),
                    method=label,
                    seed=seed,
                    overrides={**base, **overrides, "train.seed": seed},
                    depends_on=teacher.name,
                    negatives=overrides.get("contrast.negatives", 16384) if contrastive else None,
                )
            )
    return cells


#: Pilot arms run with a second seed: the regime question (does CRD+KD beat KD?) needs a spread.
PILOT_REGIME_ARMS = ("kd", "crd+kd uniform")


def decisive_pilot(teacher: Cell) -> list[Cell]:
    """The pilot on the validation split (names ``pilot-...``): the :data:`PILOT_REGIME_ARMS` with
    seeds 0 and 1, then every other arm of :data:`PILOT_ARMS` with seed 0."""
    base = {**DECISIVE_STUDENT, "data.eval_split": "val"}
    regime = {label: PILOT_ARMS[label] for label in PILOT_REGIME_ARMS}
    others = {label: arms for label, arms in PILOT_ARMS.items() if label not in regime}
    # the regime question first: its arms on both seeds, then the candidates
    return arm_cells(regime, base, (0, 1), "pilot", "pilot", teacher) + arm_cells(
        others, base, (0,), "pilot", "pilot", teacher
    )


#: The class-level pilot arms the main grid chooses its class-level SCNS from (the rule in
#: BENCHMARKS.md s. 8: the highest final-epoch validation top-1 at seed 0).
CLASS_LEVEL_CANDIDATES = (
    "crd+kd class_topk wordnet+glove",
    "crd+kd class_topk wordnet+glove beta1",
    "crd+kd mixture ramp teacher:confusion",
)

#: The pilot's choice by that rule (:func:`class_level_choice` of the pilot's results); None until the
#: pilot has finished (the main grid is then not listed). A test holds it to the rule.
DECISIVE_BEST_CLASS_ARM: str | None = "crd+kd class_topk wordnet+glove"


def class_level_choice(records: list[dict[str, Any]]) -> str | None:
    """The pre-registered rule (BENCHMARKS.md s. 8) applied to run records (``results.json``): among
    the :data:`CLASS_LEVEL_CANDIDATES`' pilot runs at seed 0, the highest validation top-1 after the
    last epoch; a tie goes to the cheaper step. None while a candidate has not finished."""
    finals = {
        r["method"]: (r["final_top1"], r.get("step_time_s") or math.inf)
        for r in records
        if r["method"] in CLASS_LEVEL_CANDIDATES and r["seed"] == 0 and r["name"].startswith("pilot-")
    }
    if set(finals) != set(CLASS_LEVEL_CANDIDATES):
        return None
    return max(CLASS_LEVEL_CANDIDATES, key=lambda arm: (finals[arm][0], -finals[arm][1]))


#: Seeds of the pre-registered main grid (paired: every method runs every seed; not the pilot's 0 and 1).
DECISIVE_MAIN_SEEDS = (2, 3, 4, 5)


#: The start of the main grid's label of its class-level arm, ``best class-level: <pilot arm>``.
BEST_CLASS_PREFIX = "best class-level"


def best_class_label(best_class_arm: str) -> str:
    """The main grid's label of the chosen class-level pilot arm (``best class-level: <arm>``)."""
    return f"{BEST_CLASS_PREFIX}: {best_class_arm.removeprefix('crd+kd ')}"


def main_arm_overrides(label: str) -> dict[str, Any]:
    """The overrides (on :data:`DECISIVE_STUDENT`) of the main grid's arm ``label``; the class-level
    arm is read from its label (``best class-level: class_topk wordnet+glove``), whichever candidate
    it names."""
    chosen = CLASS_LEVEL_CANDIDATES[0]
    if label.startswith(f"{BEST_CLASS_PREFIX}: "):
        chosen = "crd+kd " + label.removeprefix(f"{BEST_CLASS_PREFIX}: ")
    if chosen not in CLASS_LEVEL_CANDIDATES:
        raise ValueError(f"{label!r} names no class-level candidate: {', '.join(CLASS_LEVEL_CANDIDATES)}")
    arms = decisive_main_arms(chosen)
    if label not in arms:
        raise ValueError(f"{label!r} is not an arm of the main grid: {', '.join(arms)}")
    return arms[label]


def decisive_main_arms(best_class_arm: str) -> dict[str, dict[str, Any]]:
    """The pre-registered main grid's methods (label -> overrides on DECISIVE_STUDENT)."""
    if best_class_arm not in CLASS_LEVEL_CANDIDATES:
        raise ValueError(
            f"{best_class_arm!r} is not a class-level candidate: {', '.join(CLASS_LEVEL_CANDIDATES)}"
        )
    return {
        "student": {"distill.method": "student"},
        "kd": PILOT_ARMS["kd"],
        "crd+kd uniform": PILOT_ARMS["crd+kd uniform"],
        best_class_label(best_class_arm): PILOT_ARMS[best_class_arm],
        "crd+kd sample_topk skip2%": PILOT_ARMS["crd+kd sample_topk skip2%"],
        "crd+kd uniform + mixup beta cap": PILOT_ARMS["crd+kd uniform + mixup beta cap"],
        "crd+kd class_topk wordnet+glove k1024": PILOT_ARMS["crd+kd class_topk wordnet+glove k1024"],
        "crd+kd uniform k1024": {**PILOT_ARMS["crd+kd uniform"], "contrast.negatives": 1024},
    }


def decisive_main(teacher: Cell, best_class_arm: str) -> list[Cell]:
    """The pre-registered main grid: every method of :func:`decisive_main_arms` x
    :data:`DECISIVE_MAIN_SEEDS`, trained on the same 45,000 images, evaluated on the test split."""
    base = {**DECISIVE_STUDENT, "data.eval_split": "test"}
    arms = decisive_main_arms(best_class_arm)
    cells = arm_cells(arms, base, DECISIVE_MAIN_SEEDS, "main", "decisive", teacher)
    # Workers take cells in list order. The arms the product's default turns on first (the primary
    # comparison and the regime's KD), seed by seed, then the other SCNS arms seed by seed, the
    # student last: a grid stopped part-way leaves complete paired seeds of the comparisons that decide.
    deciding = ("crd+kd uniform", best_class_label(best_class_arm), "kd")
    position = {label: i for i, label in enumerate(arms)}

    def priority(cell: Cell) -> tuple[int, int, int]:
        group = 0 if cell.method in deciding else 2 if cell.method == "student" else 1
        return group, cell.seed, position[cell.method]

    return sorted(cells, key=priority)


def shipped_settings(method: str, negatives: str) -> dict[str, Any]:
    """The settings ``presets/distill_defaults.yaml`` ships for a decision of the pre-registered rule
    (:func:`scns.report.decision.product_default`), as dotted keys: ``distill.method`` (``"crd+kd"``
    or ``"kd"``) and the contrast options of the main-grid arm labelled ``negatives`` over
    :data:`DECISIVE_STUDENT`'s (K, top-k, similarity). A configuration whose samplers read no class
    similarity ships none, so it needs no similarity source installed."""
    from scns.objectives.build import needs_similarity  # the sampler registry, loaded on use

    overrides = {**DECISIVE_STUDENT, **main_arm_overrides(negatives)}
    contrast = {key: value for key, value in overrides.items() if key.startswith("contrast.")}
    if not needs_similarity(Config().with_overrides(contrast).contrast):
        del contrast["contrast.similarity"]
    return {"distill.method": method, **contrast}


#: The supervised arms of ``scns demo`` (label -> overrides on the demo's digits setting): cross-entropy
#: alone, uniform negatives, and the SCNS configuration the project recommends today. Until the decisive
#: experiment (BENCHMARKS.md s. 8) names a measured best, that is the calibrated class-level candidate:
#: half uniform, half from the 3 classes nearest by the memory bank's own class means (``bank``),
#: ramped in over the first epochs.
DEMO_ARMS: dict[str, dict[str, Any]] = {
    "cross-entropy": {},
    "uniform": {"contrast.sampler": "uniform"},
    "SCNS: uniform + class_topk (bank)": {
        "contrast.sampler": "mixture",
        "contrast.mixture": ["uniform:0.5", "class_topk:0.5"],
        "contrast.similarity": "bank",
        "contrast.top_k": 3,
        "contrast.mixture_ramp": [1, 3],
    },
}

#: The methods of the GPU protocol ``paper-lite`` (pilot arms by label, plus the student alone), less
#: its class-level arm, which is :func:`paper_lite_class_arm`.
PAPER_LITE_ARMS = (
    "kd",
    "crd+kd uniform",
    "crd+kd sample_topk skip2%",
    "crd+kd uniform + mixup beta cap",
    "crd+kd class_topk wordnet+glove k1024",
)


def paper_lite_class_arm() -> str:
    """The class-level arm ``paper-lite`` checks on the GPU: the one the CPU pilot chose
    (:data:`DECISIVE_BEST_CLASS_ARM`), or plain class_topk until it has chosen."""
    return DECISIVE_BEST_CLASS_ARM or CLASS_LEVEL_CANDIDATES[0]


def paper_lite() -> list[Cell]:
    """One CRD pair (resnet56 -> resnet20, CIFAR-100) on the full 240-epoch CRD schedule, the decisive
    methods, 3 seeds: the GPU check of what the CPU grid finds, sized for 15-minute device leases.

    Run one worker per share of the GPU into one directory and re-run after every lease (finished
    cells are skipped, an unfinished one resumes from its last epoch). Cost, from the ``gpu`` grid on
    an H200 (six workers sharing it: a resnet56 -> resnet20 CRD epoch took 28 s per worker, about
    4.7 s of GPU per epoch): 21 students x 240 epochs = 5,040 epochs x 4.7 s = 6.6 h, plus the
    teacher's 240 epochs (about 0.4 h) = about 7 GPU-hours, i.e. about 28 leases of 15 minutes at
    full use, or about 37 counting each lease's start-up (BENCHMARKS.md s. 8).
    """
    teacher, preset = preset_pair("cifar100/resnet56-resnet20")
    teacher = replace(teacher, name="c100-teacher-resnet56")
    base = {**preset, "contrast.similarity": "wordnet+glove"}
    labels = (*PAPER_LITE_ARMS[:2], paper_lite_class_arm(), *PAPER_LITE_ARMS[2:])
    arms = {"student": {"distill.method": "student"}, **{a: PILOT_ARMS[a] for a in labels}}
    return [teacher, *arm_cells(arms, base, (0, 1, 2), "c100-resnet56-resnet20", "distill", teacher)]


PROTOCOLS = {
    "cpu-quick": cpu_quick,
    "gpu": gpu,
    "paper": paper,
    "decisive": decisive,
    "paper-lite": paper_lite,
}


def get_protocol(name: str) -> list[Cell]:
    """The cells of protocol ``name``; unknown names list the choices."""
    from scns.config import ConfigError

    if name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol '{name}'. Valid choices: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]()
