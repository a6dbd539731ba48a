"""Every invalid configuration is rejected, with a message naming the fix, before any data is loaded."""

from __future__ import annotations

import pytest

from scns.cli import main

#: Every test here fails if data loads before the configuration is checked (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("refuse_data_loading")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "resnet9"], "unknown model 'resnet9'"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        # a flag with a fixed set of values is refused by the parser, listing them; the same value
        # through --set (or a preset) is refused by the validation with the same list
        (["--sampler", "hardest"], "argument --sampler: invalid choice: 'hardest' (choose from"),
        (["--set", "contrast.sampler=hardest"], "unknown sampler 'hardest'"),
        (["--batch-size", "0"], "data.batch_size must be > 0"),
        (["--epochs", "-1"], "train.epochs must be > 0"),
        (["--lr", "0"], "optim.lr must be > 0"),
        (["--schedule", "step"], "argument --schedule: invalid choice: 'step'"),
        (["--set", "optim.schedule=step"], "unknown optim.schedule 'step'"),
        (["--sampler", "uniform", "--negatives", "0"], "contrast.negatives must be > 0"),
        (["--sampler", "class_topk", "--similarity", "glove", "--top-k", "10"], "top_k must be in [1, 9]"),
        (["--sampler", "class_topk"], "needs contrast.similarity"),
        (
            ["--sampler", "uniform", "--latent-mixup", "8", "--mixup-alpha", "0.7"],
            "alpha must be in (0, 0.5]",
        ),
        (["--sampler", "uniform", "--latent-mixup", "-1"], "latent_mixup must be >= 0"),
        (
            ["--sampler", "uniform", "--latent-mixup", "64", "--negatives", "32"],
            "needs at least 64 real negatives",
        ),
        (["--sampler", "sample_topk", "--top-k", "0"], "top_k must be > 0"),
        (
            ["--sampler", "uniform", "--set", "contrast.bank_dtype=int8"],
            "contrast.bank_dtype must be one of float32",
        ),
        (
            ["--sampler", "sample_topk", "--knn-backend", "annoy"],
            "invalid choice: 'annoy' (choose from 'torch', 'faiss')",
        ),
        (
            ["--set", "contrast.knn_backend=annoy"],
            "contrast.knn_backend must be one of torch, faiss, got 'annoy'",
        ),
        (["--set", "data.eval_split=train"], "data.eval_split must be one of test, val, got 'train'"),
        (
            ["--sampler", "sample_topk", "--knn-index", "ivf"],
            "knn_index=ivf needs knn_backend=faiss",
        ),
        (
            ["--sampler", "sample_topk", "--set", "contrast.knn_index=hnsw"],
            "knn_index must be one of flat, ivf",
        ),
        (["--sampler", "sample_topk", "--set", "contrast.knn_nprobe=0"], "knn_nprobe must be > 0"),
        (
            ["--sampler", "sample_topk", "--similarity", "glove", "--set", "contrast.share_top_k=10"],
            "share_top_k=10 classes is impossible for digits",
        ),
        (
            ["--sampler", "sample_topk", "--set", "contrast.share_top_k=3"],
            "share_top_k needs contrast.similarity",
        ),
        (["--set", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
        (["--set", "train.epochs=abc"], "'train.epochs' expects int"),
        (["--objective", "selfsup"], "invalid choice: 'selfsup' (choose from 'supervised', 'distill')"),
        (["--set", "train.objective=selfsup"], "unknown train.objective 'selfsup'"),
    ],
)
def test_train_rejects_bad_configuration(argv, message, capsys, tmp_path):
    try:
        code = main(["train", "--dataset", "digits", "--out-dir", str(tmp_path), *argv])
    except SystemExit as stop:  # the parser's own refusals exit with its usage error
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_distill_rejects_missing_or_mismatched_teacher(capsys, tmp_path):
    def distill(*argv: str) -> int:
        return main(["distill", "--dataset", "digits", "--out-dir", str(tmp_path), *argv])

    assert distill("--student", "resnet8") == 2
    assert "needs a teacher" in capsys.readouterr().err
    assert distill("--teacher", str(tmp_path / "none")) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert distill("--teacher", "x", "--set", "distill.method=fitnet") == 2
    assert "unknown distill.method 'fitnet'" in capsys.readouterr().err
