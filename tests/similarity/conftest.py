"""Fixtures for the similarity tests: an isolated cache folder, optional real data sources."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $SCNS_CACHE_DIR at a fresh folder so no test reads or writes ~/.cache."""
    root = tmp_path / "scns-cache"
    monkeypatch.setenv("SCNS_CACHE_DIR", str(root))
    return root / "similarity"


@pytest.fixture(scope="session")
def wn():
    """The real WordNet 3.0 reader; skips without nltk or the Debian wordnet-base files."""
    pytest.importorskip("nltk")
    from scns.similarity import SimilarityError
    from scns.similarity.wordnet import load_wordnet

    try:
        return load_wordnet()
    except SimilarityError as err:
        pytest.skip(f"WordNet data unavailable: {err}")
