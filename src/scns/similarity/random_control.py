"""``random[:seed=SEED]``: a seeded random class similarity, the control for semantic sources.

class_topk with this source keeps the same machinery (a fixed top-k of other classes per class,
the same share of negatives from them) but chooses the classes without any meaning. A gain of
``wordnet`` or ``glove`` over ``random`` is what the semantics buy; a gain of both over uniform
negatives that ``random`` shares is what concentrating negatives on a few classes buys.

The matrix depends only on the seed and the number of classes: entry (i, j) for i < j is an
independent uniform draw in [0, 1) from ``torch.Generator().manual_seed(seed)``, mirrored below the
diagonal (ties have probability 0).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from scns.similarity.base import SimilarityError
from scns.similarity.registry import register_source


class RandomSimilarity:
    """[C, C] symmetric uniform random scores fixed by ``seed``."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fingerprint(self) -> dict[str, Any] | None:
        return {"seed": self.seed}

    def compute(self, class_names: list[str]) -> Tensor:
        c = len(class_names)
        upper = torch.rand((c, c), generator=torch.Generator().manual_seed(self.seed), dtype=torch.float64)
        upper = torch.triu(upper, diagonal=1)
        return (upper + upper.T).float()


@register_source("random")
def random_similarity(seed: int | str = 0) -> RandomSimilarity:
    """``random`` or ``random:seed=SEED`` (an integer >= 0; ``random:N`` alone would read as a blend
    weight, as in ``glove:0.5+random:0.5``)."""
    try:
        value = int(seed)
    except (TypeError, ValueError):
        raise SimilarityError(f"random:seed=SEED needs an integer seed, got {seed!r}") from None
    if value < 0:
        raise SimilarityError(f"random:seed=SEED needs a seed >= 0, got {value}")
    return RandomSimilarity(value)
