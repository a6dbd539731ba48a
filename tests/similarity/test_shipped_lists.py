"""The shipped CIFAR class lists and superclass map equal the datasets' own metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scns.similarity.shipped import cifar_class_names, default_groups, load_json


def test_shipped_lists_have_official_sizes() -> None:
    data = load_json("cifar_classes.json")
    assert len(cifar_class_names("cifar10")) == 10 and len(cifar_class_names("cifar100")) == 100
    assert len(data["cifar100_coarse"]) == 20
    groups = default_groups()
    sizes = {
        g: sum(1 for n in cifar_class_names("cifar100") if groups[n] == g) for g in data["cifar100_coarse"]
    }
    assert set(sizes.values()) == {5}
    with pytest.raises(KeyError, match="only cifar10, cifar100"):
        cifar_class_names("tiny_imagenet")


@pytest.mark.realdata
def test_shipped_lists_match_dataset_meta(data_dir: Path) -> None:
    from scns.data import DatasetError, load_dataset

    try:
        c10 = load_dataset("cifar10", data_dir, "test")
        c100 = load_dataset("cifar100", data_dir, "test")
    except DatasetError as err:
        pytest.skip(f"CIFAR files not under {data_dir}: {err}")
    assert list(c10.classes) == cifar_class_names("cifar10")
    assert list(c100.classes) == cifar_class_names("cifar100")
    assert c100.coarse_labels is not None and c100.coarse_classes is not None
    fine_to_coarse = torch.zeros(100, dtype=torch.long)
    fine_to_coarse[c100.labels] = c100.coarse_labels
    groups = default_groups()
    assert [c100.coarse_classes[int(g)] for g in fine_to_coarse] == [groups[n] for n in c100.classes]
