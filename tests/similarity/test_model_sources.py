"""prototypes:RUN / confusion:RUN end to end: checkpoint -> model -> dataset -> matrix -> cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scns.similarity import (
    SimilarityError,
    class_similarity,
    confusion_similarity,
    prototype_similarity,
    soft_confusion_similarity,
)

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding an (untrained, seeded) resnet8 checkpoint for digits, as `scns train` writes."""
    models = pytest.importorskip("scns.models")
    from scns.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = models.create_model("resnet8", num_classes=10)
    root = tmp_path_factory.mktemp("run")
    state = {
        "config": {"model": {"name": "resnet8"}, "data": {"dataset": "digits", "data_dir": None}},
        "num_classes": 10,
        "classes": DIGITS,
        "model": model.state_dict(),
    }
    save_checkpoint(root / "checkpoints" / "last.pt", state)
    return root


def _reference_outputs(run_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from scns.data import get_spec, load_dataset
    from scns.data.augment import normalize
    from scns.train.checkpoint import load_trained_model

    model, _ = load_trained_model(run_dir)
    data = load_dataset("digits", None, split)
    spec = get_spec("digits")
    with torch.no_grad():
        logits, features = model(normalize(data.images, spec.mean, spec.std))
    return logits, features, data.labels


def test_prototypes_from_a_run_equal_the_pure_function(run_dir: Path) -> None:
    # the test split (360 images) keeps this fast; the default split of prototypes is "train"
    with pytest.warns(UserWarning, match="leaks test labels"):
        sim = class_similarity(f"prototypes:{run_dir}", DIGITS, split="test", batch_size=500)
    _, features, labels = _reference_outputs(run_dir, "test")
    expected = prototype_similarity(features, labels, 10)
    off = ~torch.eye(10, dtype=torch.bool)
    assert torch.allclose(sim[off], expected[off], atol=1e-4)
    assert torch.isneginf(sim.diagonal()).all()


def test_default_splits_are_train_and_test_warns() -> None:
    from scns.similarity.confusion import ConfusionSimilarity
    from scns.similarity.prototypes import PrototypeSimilarity

    assert PrototypeSimilarity("x").split == "train" and ConfusionSimilarity("x").split == "train"
    for cls in (PrototypeSimilarity, ConfusionSimilarity):
        with pytest.warns(UserWarning, match="leaks test labels into training"):
            cls("x", split="test")


@pytest.fixture
def poisoned_test_split(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """load_dataset records every split read, keeps 300 images of each split (fast), and poisons
    the test split's labels (reversed)."""
    import scns.data

    original = scns.data.load_dataset
    reads: list[str] = []

    def spy(name, root, split, *args, **kwargs):
        reads.append(split)
        data = original(name, root, split, *args, **kwargs)
        data.images, data.labels = data.images[:300], data.labels[:300]
        if split == "test":
            data.labels = 9 - data.labels
        return data

    monkeypatch.setattr(scns.data, "load_dataset", spy)
    return reads


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_confusion_from_a_run_reads_the_training_split_only(
    run_dir: Path, poisoned_test_split: list[str], mode: str
) -> None:
    spec = f"confusion:{run_dir}" + ("" if mode == "hard" else ":mode=soft:temperature=2")
    sim = class_similarity(spec, DIGITS, batch_size=300, use_cache=False)
    assert poisoned_test_split == ["train"]
    logits, _, labels = _reference_outputs(run_dir, "train")
    assert bool((torch.bincount(labels, minlength=10) > 0).all())
    if mode == "hard":
        expected = confusion_similarity(logits.argmax(1), labels, 10)
    else:
        expected = soft_confusion_similarity(logits, labels, 10, temperature=2.0)
    off = ~torch.eye(10, dtype=torch.bool)
    assert torch.allclose(sim[off], expected[off], atol=1e-5)
    # the explicit test split reads the (poisoned) test labels, and says so
    with pytest.warns(UserWarning, match="leaks test labels"):
        class_similarity(f"confusion:{run_dir}:split=test", DIGITS, batch_size=300, use_cache=False)
    assert poisoned_test_split[-1] == "test" and poisoned_test_split.count("test") == 1


def test_soft_confusion_matches_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 4, generator=g)
    labels = torch.arange(30) % 4
    out = soft_confusion_similarity(logits, labels, 4, temperature=3.0)
    probs = torch.softmax(logits.double() / 3.0, 1)
    rates = torch.zeros(4, 4, dtype=torch.float64)
    for i in range(4):
        rows = [probs[n] for n in range(30) if int(labels[n]) == i]
        rates[i] = sum(rows) / len(rows)
    torch.testing.assert_close(out, ((rates + rates.T) / 2).float())


@pytest.mark.filterwarnings("ignore:prototypes. computing the similarity on the test split")
def test_cache_is_keyed_by_the_checkpoint_bytes(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    from scns.similarity.prototypes import PrototypeSimilarity

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    calls = []
    original = PrototypeSimilarity.compute

    def spy(self, names):
        calls.append(1)
        return original(self, names)

    monkeypatch.setattr(PrototypeSimilarity, "compute", spy)
    first = class_similarity(f"prototypes:{copy}", DIGITS, split="test")
    again = class_similarity(f"prototypes:{copy}", DIGITS, split="test")
    assert len(calls) == 1 and torch.equal(first, again)
    # retrain = new checkpoint bytes: the cache must not answer
    from scns.train.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(copy)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    state.pop("path")
    state.pop("format_version")
    save_checkpoint(copy / "checkpoints" / "last.pt", state)
    class_similarity(f"prototypes:{copy}", DIGITS, split="test")
    assert len(calls) == 2


def test_class_list_mismatch_and_missing_run_are_clear_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SimilarityError, match="trained on 10 classes"):
        class_similarity(f"prototypes:{run_dir}", [f"c{i}" for i in range(10)])
    with pytest.raises(SimilarityError, match="checkpoint not found"):
        class_similarity(f"confusion:{tmp_path / 'nope.pt'}", DIGITS)
    with pytest.raises(SimilarityError, match="split must be one of"):
        class_similarity(f"prototypes:{run_dir}", DIGITS, split="val")
