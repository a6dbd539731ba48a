"""``scns similarity``: print, plot and compare class-to-class similarities.

Examples::

    scns similarity --dataset cifar100 --source glove --top 5
    scns similarity --dataset cifar100 --source wordnet --class apple --class bus
    scns similarity --dataset cifar100 --source wordnet+glove --top 10 --class apple
    scns similarity --dataset cifar100 --source hierarchy:wordnet --plot sim.png
    scns similarity --dataset cifar100 --compare glove wordnet text prototypes:runs/r1 --top 5
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "similarity",
        help="class-to-class similarity: nearest classes, heatmap, agreement of sources",
        description=(
            "Class similarity from a source spec: glove, wordnet[:wup|path|lch], text, "
            "prototypes:RUN_DIR, confusion:RUN_DIR (training split; :split=test warns), "
            "hierarchy[:TIEBREAK_SOURCE]; composites wordnet+glove (ties of the first broken by "
            "the next) and glove:0.5+wordnet:0.5 (a blend of percentiles). Training adds bank "
            "(the memory bank's class means, each epoch) and, in distillation, "
            "teacher:prototypes|confusion. --top shows the tie group at the k-th place. "
            "Matrices are cached (see --cache-dir)."
        ),
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="whose classes to compare: a registered dataset (`scns datasets`), folder included",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder (default $SCNS_DATA_DIR); CIFAR class names ship with scns and need none",
    )
    parser.add_argument(
        "--source",
        help="similarity source spec, e.g. glove, wordnet:lch, wordnet+glove, glove:0.5+wordnet:0.5, prototypes:runs/r1",
    )
    parser.add_argument(
        "--top", type=int, default=5, metavar="K", help="nearest classes to show / compare (5)"
    )
    parser.add_argument(
        "--class",
        dest="classes",
        action="append",
        default=[],
        metavar="NAME",
        help="only this class (repeatable)",
    )
    parser.add_argument("--plot", metavar="PNG", help="write a clustered heatmap of the --source matrix")
    parser.add_argument(
        "--compare", nargs="+", metavar="SRC", help="pairwise agreement of these sources' top-K sets"
    )
    parser.add_argument(
        "--cache-dir", help="cache folder (default $SCNS_CACHE_DIR/similarity or ~/.cache/scns/similarity)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write cached matrices")
    parser.add_argument(
        "--device", default="auto", help="device for model and text sources: auto | cpu | cuda"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="batch size of model sources (256)")
    parser.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="glove: read class NAME as TEXT (repeatable), e.g. --alias gasmask='gas mask'",
    )
    parser.set_defaults(run=run)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def dataset_classes(dataset: str, data_dir: str | None) -> tuple[list[str], dict[str, Any]]:
    """Class names of ``dataset`` and what sources may use about them (``wnids``, ``groups``)."""
    from scns.similarity.shipped import cifar_class_names

    if dataset in ("cifar10", "cifar100"):
        return cifar_class_names(dataset), {}
    from scns.data import get_spec, load_dataset
    from scns.similarity import imageset_context

    get_spec(dataset)  # an unknown name lists the registered ones
    data = load_dataset(dataset, data_dir, "test")
    return list(data.classes), imageset_context(data)


def _aliases(pairs: list[str]) -> dict[str, str]:
    from scns.similarity import SimilarityError

    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name or not text:
            raise SimilarityError(f"--alias expects NAME=TEXT, got {pair!r}")
        out[name] = text
    return out


def _print_neighbours(sim: Any, classes: list[str], chosen: list[str], k: int, max_tied: int = 12) -> None:
    """One line per class: its top-k, the tie group at the k-th place shown as a group.

    ``[tie 0.421: 4 of 5, 0.80 each: can, cup, ...]`` means five classes share the value 0.421
    at the k-th place and split the 4 slots left (tie-aware weights, see ``topk_weights``).
    """
    from scns.similarity import ClassSimilarity, topk_tie_stats

    table = ClassSimilarity(sim, classes)
    stats = topk_tie_stats(sim, k)
    print(
        f"# ties at k={k}: {stats['rows_cut']} of {stats['rows']} rows cut inside a tie; the legacy "
        f"id-ordered top-k fills {stats['slots_by_order']} of {stats['slots']} slots by class order"
    )
    rows = chosen or classes
    width = max(len(c) for c in rows)
    for name in rows:
        above, tied, share = table.neighbour_groups(name, k)
        cells = [f"{other} {score:.3f}" for other, score in above]
        if share == 1.0:
            cells += [f"{other} {score:.3f}" for other, score in tied]
        else:
            names = [other for other, _ in tied]
            more = f", ... +{len(names) - max_tied} more" if len(names) > max_tied else ""
            slots = k - len(above)
            cells.append(
                f"[tie {tied[0][1]:.3f}: {slots} of {len(tied)}, {share:.2f} each: "
                f"{', '.join(names[:max_tied])}{more}]"
            )
        print(f"{name:<{width}}  {'  '.join(cells)}")


def _fmt(x: float) -> str:
    return "   nan" if math.isnan(x) else f"{x:6.3f}"


def run(args: argparse.Namespace) -> int:
    from scns.similarity import SimilarityError, SimilaritySpec, class_similarity
    from scns.similarity.agreement import pairwise_agreement

    if not args.source and not args.compare:
        raise SimilarityError("give --source SRC (and/or --compare SRC SRC ...); e.g. --source wordnet")
    if args.plot and not args.source:
        raise SimilarityError("--plot draws the --source matrix: add --source SRC")
    data_dir = args.data_dir or os.environ.get("SCNS_DATA_DIR")
    classes, context = dataset_classes(args.dataset, data_dir)
    c = len(classes)
    if not 1 <= args.top <= c - 1:
        raise SimilarityError(f"--top must be in [1, {c - 1}] for {c} classes, got {args.top}")
    for name in args.classes:
        if name not in classes:
            import difflib

            close = difflib.get_close_matches(name, classes, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise SimilarityError(f"--class {name!r} is not a {args.dataset} class.{hint}")
    context.update(data_dir=data_dir, device=_device(args.device), batch_size=args.batch_size)
    aliases = _aliases(args.alias)
    cache: dict[str, Any] = {"cache_dir": args.cache_dir, "use_cache": not args.no_cache, "context": context}

    def compute(spec: str) -> Any:
        terms = SimilaritySpec.parse(spec).terms
        options: dict[str, Any] = {}
        if aliases and any(t.name == "glove" for t in terms):
            if len(terms) > 1:
                raise SimilarityError("--alias applies to a lone glove source, not to a composite spec")
            options = {"aliases": aliases}
        return class_similarity(spec, classes, **cache, **options)

    if args.source:
        sim = compute(args.source)
        print(f"# {args.dataset}: {args.source}, {min(args.top, c - 1)} nearest classes")
        _print_neighbours(sim, classes, args.classes, args.top)
        if args.plot:
            from scns.similarity.plot import plot_similarity

            path = plot_similarity(sim, classes, Path(args.plot), title=f"{args.dataset}: {args.source}")
            print(f"wrote {path}")

    if args.compare:
        if len(args.compare) < 2:
            raise SimilarityError("--compare needs at least two sources")
        repeated = sorted({s for s in args.compare if args.compare.count(s) > 1})
        if repeated:
            raise SimilarityError(f"--compare lists {', '.join(repeated)} twice")
        matrices = {spec: compute(spec) for spec in args.compare}
        if args.classes:
            print()
            for spec, sim in matrices.items():
                print(f"# {spec}")
                _print_neighbours(sim, classes, args.classes, args.top)
        k = args.top
        width = max(len(s) for s in args.compare)
        print()
        print(
            f"# agreement on {args.dataset} ({c} classes): top-{k} overlap, top-{k} Jaccard, Spearman (upper triangle)"
        )
        print(f"{'source A':<{width}}  {'source B':<{width}}  overlap  jaccard  spearman")
        for row in pairwise_agreement(matrices, k):
            print(
                f"{row.a:<{width}}  {row.b:<{width}}  {_fmt(row.overlap)}   {_fmt(row.jaccard)}   {_fmt(row.spearman)}"
            )
    return 0
