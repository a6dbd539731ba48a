"""Heatmap of a similarity matrix, classes ordered by hierarchical clustering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from scns.similarity.base import SimilarityError


def _with_finite_diagonal(sim: Tensor) -> np.ndarray:
    s = sim.detach().cpu().double().numpy().copy()
    off = ~np.eye(s.shape[0], dtype=bool)
    np.fill_diagonal(s, s[off].max() if off.any() else 1.0)
    return s


def cluster_order(sim: Tensor) -> list[int]:
    """Class order that puts similar classes next to each other.

    Average-linkage clustering on distances ``max(S) - S`` (diagonal 0), leaves in optimal order
    (scipy's ``optimal_leaf_ordering``), so neighbouring rows of the heatmap are most alike.

    Returns:
        A permutation of ``range(C)``.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    s = _with_finite_diagonal(sim)
    if s.shape[0] < 3:
        return list(range(s.shape[0]))
    dist = s.max() - s
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)]


def plot_similarity(sim: Tensor, classes: list[str], path: str | Path, title: str = "") -> Path:
    """Write a PNG heatmap of ``sim`` [C, C] with rows/columns in :func:`cluster_order`.

    The figure grows with C (about 0.17 in per class) and tick labels shrink, so 100 or 200
    class names stay legible; the diagonal is drawn at the largest off-diagonal value.
    """
    if tuple(sim.shape) != (len(classes), len(classes)):
        raise SimilarityError(f"matrix {list(sim.shape)} does not match {len(classes)} class names")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    order = cluster_order(sim)
    s = _with_finite_diagonal(sim)[np.ix_(order, order)]
    names = [classes[i] for i in order]
    c = len(names)
    side = max(6.0, 0.17 * c + 2.5)
    font = float(np.clip(700.0 / max(c, 1), 3.5, 10.0))
    fig, ax = plt.subplots(figsize=(side, side * 0.92))
    image = ax.imshow(s, cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(c), names, rotation=90, fontsize=font)
    ax.set_yticks(range(c), names, fontsize=font)
    ax.tick_params(length=1.5, pad=1)
    if title:
        ax.set_title(title, fontsize=max(font + 2, 9))
    fig.colorbar(image, ax=ax, fraction=0.035, pad=0.01)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
