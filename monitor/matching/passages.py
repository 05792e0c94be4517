"""Articles into passages, and passages into vectors, the same way for every caller."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.ingest.language import UNSPACED_CHAR, words_of
from monitor.matching.embedding import Encoder
from monitor.models import Article, Passage

# Passages embedded per encoder call when a caller embeds a large collection, so that
# progress can be reported and memory stays bounded by one chunk of token tensors.
EMBED_CHUNK = 256


def _join(tokens: Sequence[str]) -> str:
    out: list[str] = []
    for token in tokens:
        # Spaces go back between words, but not between two characters of an unspaced script.
        if out and not (UNSPACED_CHAR.match(token) and UNSPACED_CHAR.match(out[-1][-1])):
            out.append(" ")
        out.append(token)
    return "".join(out)


def split_passages(title: str | None, text: str, words: int = 180, overlap: int = 30) -> list[str]:
    """Split an article into overlapping passages that fit the model's window, in any script.

    The title, when present, is prefixed to the first passage so that the lead
    is read in its headline's context.

    Args:
        title: the article title.
        text: the article body.
        words: passage length in words (180 words stay under 256 word pieces); in Chinese,
            Japanese and Thai a character counts as a word.
        overlap: words shared by consecutive passages.

    Returns:
        At least one passage.
    """
    tokens = words_of(text)
    step = max(words - overlap, 1)
    passages: list[str] = []
    for start in range(0, max(len(tokens), 1), step):
        chunk = _join(tokens[start : start + words])
        if chunk:
            passages.append(chunk)
        if start + words >= len(tokens):
            break
    if not passages:
        passages = [""]
    if title and not text.startswith(title):
        passages[0] = f"{title}. {passages[0]}".strip()
    return passages


@dataclass(frozen=True)
class EmbeddedDocuments:
    """Passages of many documents, document after document, with their vectors."""

    starts: np.ndarray  # index of each document's first passage
    texts: list[str]  # passage texts
    vectors: np.ndarray  # (passages, dim) unit vectors
    seconds: float  # time spent in the encoder


def embed_documents(
    encoder: Encoder,
    documents: Sequence[tuple[str | None, str]],
    words: int = 180,
    overlap: int = 30,
    progress: Callable[[str], None] | None = None,
) -> EmbeddedDocuments:
    """Split documents into passages and embed them all with the encoder's passage role.

    Args:
        encoder: the encoder.
        documents: ``(title, text)`` pairs.
        words: passage length in words.
        overlap: overlap between passages in words.
        progress: receives a line after each chunk of ``EMBED_CHUNK`` passages.

    Returns:
        The passages and their vectors.
    """
    texts: list[str] = []
    starts: list[int] = []
    for title, text in documents:
        starts.append(len(texts))
        texts.extend(split_passages(title, text, words, overlap))
    started = time.monotonic()
    chunks = []
    for i in range(0, len(texts), EMBED_CHUNK):
        chunks.append(encoder.encode_passages(texts[i : i + EMBED_CHUNK]))
        if progress and len(texts) > EMBED_CHUNK:
            progress(f"embedded {min(i + EMBED_CHUNK, len(texts))}/{len(texts)} passages")
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)
    return EmbeddedDocuments(np.array(starts, dtype=np.int64), texts, vectors, time.monotonic() - started)


def passage_hash(text: str) -> str:
    """Identity of a passage's text: equal texts (a syndicated copy's paragraphs) share stored vectors."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


Reuse = Callable[[Sequence[str]], Mapping[str, np.ndarray]]


def passage_keys(
    documents: Sequence[tuple[str, str | None, str]], words: int = 180, overlap: int = 30
) -> list[tuple[str, int, str, str]]:
    """``(article_id, seq, text, hash)`` of every passage of ``(article_id, title, text)`` documents.

    The passages :func:`embed_passages` embeds, so a caller can look up their stored vectors first.
    """
    return [
        (article_id, seq, text, passage_hash(text))
        for article_id, title, body in documents
        for seq, text in enumerate(split_passages(title, body, words, overlap))
    ]


def embed_passages(
    encoder: Encoder,
    documents: Sequence[tuple[str, str | None, str]],
    words: int = 180,
    overlap: int = 30,
    reuse: Reuse | None = None,
) -> list[Passage]:
    """Split ``(article_id, title, text)`` documents into passages and embed the ones not seen before.

    Identical passage texts are embedded once per call, and ``reuse`` (hash → stored vector,
    of this encoder) supplies vectors already in the archive, so a syndicated copy's
    unchanged paragraphs cost no model time. Vectors are the same either way: the encoder is
    deterministic for a text.

    Returns:
        Passages of all documents, in document order then passage order, each naming the encoder.
    """
    keyed = passage_keys(documents, words, overlap)
    known = dict(reuse([k[3] for k in keyed])) if reuse and keyed else {}
    todo: dict[str, str] = {}
    for _, _, text, digest in keyed:
        if digest not in known:
            todo.setdefault(digest, text)
    if todo:
        vectors = _encode_in_chunks(encoder, list(todo.values()))
        known.update(zip(todo, vectors, strict=True))
    return [Passage(aid, seq, text, known[digest], encoder.name, digest) for aid, seq, text, digest in keyed]


def _encode_in_chunks(encoder: Encoder, texts: list[str]) -> np.ndarray:
    chunks = [
        encoder.encode_passages(texts[i : i + EMBED_CHUNK * 4]) for i in range(0, len(texts), EMBED_CHUNK * 4)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)


def embed_articles(
    encoder: Encoder,
    articles: Sequence[Article],
    words: int = 180,
    overlap: int = 30,
    reuse: Reuse | None = None,
) -> list[Passage]:
    """Split every article into passages and embed them (see :func:`embed_passages`)."""
    return embed_passages(encoder, [(a.article_id, a.title, a.text) for a in articles], words, overlap, reuse)
