"""``bank``: class similarity from a memory bank, recomputed during training (a dynamic source).

The memory bank holds one L2-normalised feature row per training sample; the class similarity is
the cosine of the class means of those rows, the same reduction as ``prototypes`` (which runs a
trained model instead). It is cheap (one ``index_add`` and one [C, D] x [D, C] product), needs no
extra pass over the data, and follows what the model currently confuses. A spec names it as
``bank`` (``glove:0.5+bank:0.5``, ``wordnet+bank``); see :mod:`scns.similarity.spec`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from scns.similarity.prototypes import class_prototypes


@torch.no_grad()
def bank_class_similarity(features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Cosine of the L2-normalised class means of ``features``.

    Args:
        features: float [N, D] memory-bank rows (any float dtype; normalised here per row).
        labels: int [N] class id of each row, every class present.
        num_classes: C.

    Returns:
        float32 [C, C] on ``features``' device: symmetric, in [-1, 1] off the diagonal, ``-inf``
        on it (like every finished similarity).
    """
    means = class_prototypes(features, labels.to(features.device), num_classes)  # [C, D]
    unit = torch.nn.functional.normalize(means, dim=1)
    sim = (unit @ unit.T).clamp_(-1.0, 1.0)
    sim = (sim + sim.T) / 2  # exact symmetry whatever the matmul's rounding
    return sim.fill_diagonal_(float("-inf"))
