"""``teacher:prototypes`` / ``teacher:confusion``: similarity from the distillation teacher, no extra run.

In ``scns distill`` the frozen teacher is already loaded; these sources run it once over the run's
training set (never the test split) through the same path as ``prototypes:RUN_DIR`` and
``confusion:RUN_DIR`` (:func:`scns.similarity.model_outputs.model_similarity`):

* ``teacher:prototypes``: cosine of the teacher's per-class mean features;
* ``teacher:confusion``: the teacher's *soft-label* confusion (mean softmax probability of class
  ``j`` over class-``i`` training samples, symmetrised), ``:temperature=T`` to soften it
  (default 1), ``:mode=hard`` for argmax counts.

The training code puts what they need into the ``context`` (see ``scns.train.setup.
resolve_similarity``): ``teacher`` (the module), ``train_images`` (uint8 [N, H, W, 3]),
``train_labels`` ([N]), ``eval_transform`` and ``teacher_checkpoint`` (its file, for the cache
key; the training set's bytes are in the key too).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from scns.similarity.base import SimilarityError
from scns.similarity.confusion import ConfusionReducer
from scns.similarity.model_outputs import Reducer, TeacherSimilarity
from scns.similarity.prototypes import PrototypeReducer
from scns.similarity.registry import register_source

KINDS = ("prototypes", "confusion")


@register_source("teacher", spec_arg="kind")
def teacher(
    kind: str,
    teacher: nn.Module | None = None,
    train_images: Tensor | None = None,
    train_labels: Tensor | None = None,
    eval_transform: Callable[[Tensor], Tensor] | None = None,
    teacher_checkpoint: str | Path | None = None,
    mode: str = "soft",
    temperature: float | str = 1.0,
    batch_size: int = 256,
    device: str = "cpu",
) -> TeacherSimilarity:
    """The distillation teacher's class prototypes or soft confusion on the training set."""
    if kind not in KINDS:
        raise SimilarityError(f"teacher:KIND takes {' or '.join(KINDS)}, got {kind!r}")
    if teacher is None or train_images is None or train_labels is None or eval_transform is None:
        raise SimilarityError(
            f"teacher:{kind} is only known in distillation (scns distill --similarity teacher:{kind}), "
            "where the teacher is loaded; elsewhere use "
            f"{kind}:TEACHER_RUN_DIR"
        )
    if kind == "prototypes" and (mode != "soft" or float(temperature) != 1.0):
        raise SimilarityError("teacher:prototypes takes no mode or temperature")
    reducer: Reducer = PrototypeReducer() if kind == "prototypes" else ConfusionReducer(mode, temperature)
    return TeacherSimilarity(
        reducer,
        teacher,
        train_images,
        train_labels,
        eval_transform,
        checkpoint=teacher_checkpoint,
        batch_size=batch_size,
        device=device,
    )


def uses_teacher(spec: str) -> bool:
    """Whether a (possibly composite) spec has a ``teacher:*`` term."""
    from scns.similarity.spec import SimilaritySpec

    return any(term.name == "teacher" for term in SimilaritySpec.parse(spec).terms)


def teacher_context(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    transform: Callable[[Tensor], Tensor],
    checkpoint: str | Path | None = None,
) -> dict[str, object]:
    """The ``context`` entries the ``teacher:*`` sources read (see the module docstring).

    Args:
        model: the loaded teacher.
        images: uint8 [N, H, W, 3] training images; labels: int [N].
        transform: eval transform of the dataset.
        checkpoint: the teacher's run directory or checkpoint (cache key); None: not cached.
    """
    return {
        "teacher": model,
        "train_images": images,
        "train_labels": labels,
        "eval_transform": transform,
        "teacher_checkpoint": checkpoint,
    }
