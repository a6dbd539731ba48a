"""What a dataset can tell the similarity sources about its classes."""

from __future__ import annotations

from typing import Any

import torch


def imageset_context(data: Any) -> dict[str, Any]:
    """``context`` for :func:`scns.similarity.class_similarity` from an ``ImageSet``.

    Args:
        data: an ``scns.data.ImageSet`` (or anything with ``classes``, ``labels`` and optional
            ``wnids``, ``coarse_labels``, ``coarse_classes``).

    Returns:
        ``{"wnids": [...]}`` when the dataset has WordNet ids (Tiny-ImageNet; used by ``wordnet``)
        and ``{"groups": [...]}``, one coarse class name per class, when it has coarse labels
        (CIFAR-100; used by ``hierarchy``).
    """
    context: dict[str, Any] = {}
    wnids = getattr(data, "wnids", None)
    if wnids is not None:
        context["wnids"] = [str(w) for w in wnids]
    coarse_labels = getattr(data, "coarse_labels", None)
    coarse_classes = getattr(data, "coarse_classes", None)
    if coarse_labels is not None and coarse_classes is not None:
        fine_to_coarse = torch.full((len(data.classes),), -1, dtype=torch.long)
        fine_to_coarse[data.labels] = coarse_labels.to(torch.long)
        if bool((fine_to_coarse >= 0).all()):  # every class seen: the map is complete
            context["groups"] = [coarse_classes[int(g)] for g in fine_to_coarse]
    return context
