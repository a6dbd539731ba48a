"""teacher:prototypes / teacher:confusion: the loaded teacher over the training set, one path with RUN_DIR."""

from __future__ import annotations

import pytest
import torch

from scns.similarity import (
    SimilarityError,
    class_similarity,
    prototype_similarity,
    soft_confusion_similarity,
)
from scns.similarity.teacher import teacher_context

DIGITS = [str(i) for i in range(10)]
OFF = ~torch.eye(10, dtype=torch.bool)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory):
    """A seeded resnet8 'teacher' saved as a run, the first 300 digits training images, and its outputs."""
    models = pytest.importorskip("scns.models")
    from scns.data import get_spec, load_dataset
    from scns.data.augment import BatchTransform
    from scns.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = models.create_model("resnet8", num_classes=10).eval()
    root = tmp_path_factory.mktemp("teacher")
    save_checkpoint(
        root / "checkpoints" / "last.pt",
        {
            "config": {"model": {"name": "resnet8"}, "data": {"dataset": "digits", "data_dir": None}},
            "num_classes": 10,
            "classes": DIGITS,
            "model": model.state_dict(),
        },
    )
    data = load_dataset("digits", None, "train")
    images, labels = data.images[:300], data.labels[:300]
    transform = BatchTransform.from_spec(get_spec("digits"), train=False)
    with torch.no_grad():
        logits, features = model(transform(images))
    return model, root, images, labels, transform, logits, features


def test_teacher_prototypes_and_soft_confusion_equal_the_pure_functions(teacher_run) -> None:
    model, root, images, labels, transform, logits, features = teacher_run
    context = teacher_context(model, images, labels, transform, checkpoint=root)  # cached: the blend reuses
    protos = class_similarity("teacher:prototypes", DIGITS, context=context)
    torch.testing.assert_close(
        protos[OFF], prototype_similarity(features, labels, 10)[OFF], atol=1e-5, rtol=0
    )
    confusion = class_similarity("teacher:confusion:temperature=4", DIGITS, context=context)
    expected = soft_confusion_similarity(logits, labels, 10, temperature=4.0)
    torch.testing.assert_close(confusion[OFF], expected[OFF], atol=1e-6, rtol=0)
    # blends and chains take teacher terms like any static source
    blend = class_similarity("teacher:prototypes:0.5+teacher:confusion:0.5", DIGITS, context=context)
    assert torch.equal(blend, blend.T)


def test_teacher_source_is_cached_by_checkpoint_and_training_set(teacher_run, monkeypatch) -> None:
    from scns.similarity.model_outputs import TeacherSimilarity

    model, root, images, labels, transform, *_ = teacher_run
    calls = []
    original = TeacherSimilarity.compute
    monkeypatch.setattr(
        TeacherSimilarity, "compute", lambda self, names: calls.append(1) or original(self, names)
    )
    context = teacher_context(model, images, labels, transform, checkpoint=root)
    first = class_similarity("teacher:prototypes", DIGITS, context=context)
    again = class_similarity("teacher:prototypes", DIGITS, context=context)
    assert len(calls) == 1 and torch.equal(first, again)
    other = teacher_context(model, images[:250], labels[:250], transform, checkpoint=root)
    class_similarity("teacher:prototypes", DIGITS, context=other)  # another training set: recomputed
    assert len(calls) == 2


def test_teacher_source_outside_distillation_is_a_clear_error() -> None:
    with pytest.raises(SimilarityError, match="only known in distillation"):
        class_similarity("teacher:prototypes", DIGITS)
    with pytest.raises(SimilarityError, match="prototypes or confusion"):
        class_similarity("teacher:logits", DIGITS)


def test_resolve_similarity_gives_the_teacher_to_the_source(teacher_run, monkeypatch) -> None:
    """In a distillation config, resolve_similarity loads the teacher (when not given) over the training set."""
    from scns.config import Config, ConfigError
    from scns.data import load_dataset
    from scns.train.setup import resolve_similarity

    model, root, images, labels, transform, *_ = teacher_run
    train = load_dataset("digits", None, "train")
    train.images, train.labels = train.images[:300], train.labels[:300]
    config = Config().with_overrides(
        {
            "data.dataset": "digits",
            "model.name": "resnet8",
            "train.objective": "distill",
            "distill.teacher": str(root),
        }
    )
    sim = resolve_similarity("teacher:prototypes", train, config, torch.device("cpu"))
    expected = class_similarity(
        "teacher:prototypes", DIGITS, context=teacher_context(model, images, labels, transform)
    )
    torch.testing.assert_close(sim, expected, atol=1e-5, rtol=0)
    given = resolve_similarity("teacher:prototypes", train, config, torch.device("cpu"), teacher=model)
    torch.testing.assert_close(given, expected, atol=1e-5, rtol=0)
    supervised = Config().with_overrides({"data.dataset": "digits", "model.name": "resnet8"})
    with pytest.raises(ConfigError, match="need a distillation"):
        resolve_similarity("teacher:prototypes", train, supervised, torch.device("cpu"))
