"""Class lists and maps that ship with scns (``scns/similarity/data/*.json``).

They let the name-based sources (glove, wordnet, text, hierarchy) work for CIFAR-10/100 without
the dataset files.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _raw(name: str) -> bytes:
    return resources.files("scns.similarity").joinpath("data").joinpath(name).read_bytes()


def load_json(name: str) -> dict[str, Any]:
    """A shipped JSON file, parsed (a fresh copy each call, so callers may mutate it)."""
    return json.loads(_raw(name))


def digest(name: str) -> str:
    """sha256 of a shipped file's bytes (part of cache keys, so editing a map invalidates caches)."""
    return hashlib.sha256(_raw(name)).hexdigest()


def cifar_class_names(dataset: str) -> list[str]:
    """Official class names of ``cifar10`` or ``cifar100``, in label order."""
    if dataset not in ("cifar10", "cifar100"):
        raise KeyError(f"no shipped class list for '{dataset}' (only cifar10, cifar100)")
    return list(load_json("cifar_classes.json")[dataset])


def default_groups() -> dict[str, str]:
    """Class name -> coarse group: CIFAR-100's 20 official superclasses and scns's CIFAR-10 split
    into vehicles and animals (the class names of the two datasets do not overlap)."""
    data = load_json("cifar_classes.json")
    return {**data["cifar10_groups"], **data["cifar100_fine_to_coarse"]}


def default_synsets() -> dict[str, str]:
    """Curated class name -> WordNet 3.0 synset name for CIFAR-10 and CIFAR-100."""
    data = load_json("wordnet_synsets.json")
    return {**data["cifar10"], **data["cifar100"]}


def default_aliases() -> dict[str, str]:
    """Built-in class name -> replacement text for names GloVe does not know."""
    return dict(load_json("glove_aliases.json")["aliases"])
