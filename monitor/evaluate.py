"""Measure topic matching on labelled articles, beside simple baselines, without a database.

A labels file has one JSON object per line: ``{"id", "title", "text", "label"}``
(``title`` may be null; ``label`` 1 means an analyst wants the item flagged for
some topic; an optional ``topic`` gives per-topic recall; other keys are ignored).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.embed import Embedder, split_passages
from monitor.match import TopicMatcher
from monitor.models import Topic

# The keyword rule analysts use today (Google-Alerts style), as stated in issue #3.
KEYWORD_RULE = re.compile(
    r"(?is)^(?=.*\b(?:iran|iranian|tehran|irgc|islamic republic)\b)"
    r"(?=.*(?:\bmissile|\bballistic\b|\bjcpoa\b|\bnuclear deal\b|\bnuclear talks\b|\bnuclear program(?:me)?\b))"
)


class LabelsError(ValueError):
    """Raised when a labels file is missing or a line is not a valid labelled item."""


@dataclass(frozen=True)
class LabelledItem:
    """One labelled article."""

    item_id: str
    title: str | None
    text: str
    label: int
    topic: str | None = None

    @property
    def full_text(self) -> str:
        """Title and text, as the keyword rule and the lexical signal read them."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    @property
    def half(self) -> str:
        """``calibration`` or ``holdout``, decided by a hash of the id (stable across runs)."""
        return "calibration" if hashlib.sha256(self.item_id.encode()).digest()[0] % 2 == 0 else "holdout"


def load_labels(path: Path) -> list[LabelledItem]:
    """Read a labels file.

    Raises:
        LabelsError: the file is missing, or a line lacks ``id``, ``text`` or a 0/1 ``label``.
    """
    items: list[LabelledItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise LabelsError(f"labels file not found: {path}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            label = raw["label"]
            if label not in (0, 1) or isinstance(label, bool):
                raise ValueError(f"label must be 0 or 1, got {label!r}")
            if not isinstance(raw["text"], str):
                raise ValueError("text must be a string")
            title = raw.get("title")
            items.append(
                LabelledItem(str(raw["id"]), title if isinstance(title, str) else None, raw["text"], int(label),
                             raw.get("topic") or None)
            )  # fmt: skip
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise LabelsError(f"{path}:{number}: {exc}") from exc
    if not items:
        raise LabelsError(f"{path}: no labelled items")
    return items


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of a ranking (ties share one threshold, as in scikit-learn)."""
    positives = int(labels.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_tie = np.append(np.diff(s) != 0, True)
    tp = np.cumsum(y)[last_of_tie]
    seen = (np.arange(1, len(y) + 1))[last_of_tie]
    precision = tp / seen
    recall = tp / positives
    return float(np.sum(np.diff(np.append(0.0, recall)) * precision))


def prf(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of binary predictions."""
    tp = int((predicted & (labels == 1)).sum())
    flagged, positives = int(predicted.sum()), int(labels.sum())
    precision = tp / flagged if flagged else 0.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold with the highest F1 (used only to give baselines their best case)."""
    best_f1, best_t = -1.0, float(scores.max()) if len(scores) else 0.0
    for t in np.unique(scores):
        f1 = prf(scores >= t, labels)["f1"]
        if f1 > best_f1:
            best_f1, best_t = f1, float(t)
    return best_t


@dataclass(frozen=True)
class ItemScores:
    """Scores of labelled items: per topic (n x topics) and the embedding time."""

    scores: np.ndarray
    thresholds: np.ndarray
    embed_seconds: float

    @property
    def best_margin(self) -> np.ndarray:
        """Each item's best score minus threshold over topics: >= 0 means flagged."""
        return (self.scores - self.thresholds).max(axis=1)


def score_items(
    items: Sequence[LabelledItem],
    topics: Sequence[Topic],
    embedder: Embedder,
    words: int = 180,
    overlap: int = 30,
    progress: Callable[[str], None] | None = None,
) -> ItemScores:
    """Score labelled items with the project's passage-level topic scoring.

    Args:
        items: the labelled items.
        topics: topic profiles.
        embedder: the model.
        words: passage length in words.
        overlap: passage overlap in words.
        progress: receives a line of progress now and then.

    Returns:
        Per-topic scores and the time spent embedding.
    """
    texts: list[str] = []
    starts: list[int] = []
    for item in items:
        starts.append(len(texts))
        texts.extend(split_passages(item.title, item.text, words, overlap))
    started = time.monotonic()
    chunks = []
    step = 256
    for i in range(0, len(texts), step):
        chunks.append(embedder.encode(texts[i : i + step]))
        if progress:
            progress(f"embedded {min(i + step, len(texts))}/{len(texts)} passages")
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, 384), dtype=np.float32)
    embed_seconds = time.monotonic() - started
    matcher = TopicMatcher(topics, embedder)
    rows = matcher.score_articles(vectors, np.array(starts), [it.full_text for it in items])
    scores = np.array([[ts.score for ts in row] for row in rows], dtype=np.float64)
    return ItemScores(scores, np.array([t.threshold for t in topics]), embed_seconds)


def figures(ranking: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Average precision of a ranking plus P/R/F1 of a decision."""
    return {"average_precision": round(average_precision(ranking, labels), 4), **prf(predicted, labels)}


def keyword_baseline(items: Sequence[LabelledItem]) -> dict[str, float]:
    """Figures for the keyword rule (a yes/no rule, so its AP counts ties as one step)."""
    hits = np.array([bool(KEYWORD_RULE.search(it.full_text)) for it in items])
    labels = np.array([it.label for it in items])
    return figures(hits.astype(float), hits, labels)


def reference_baselines(
    items: Sequence[LabelledItem], embedder: Embedder, reference: str
) -> dict[str, dict[str, float]]:
    """Figures for two ways of comparing each item with a reference article.

    * ``whole_article``: one cosine between the item and the whole reference article;
    * ``reference_paragraphs``: the best cosine between the item and any paragraph of it.

    Each item is embedded in one pass, so the model reads only its first 256 word
    pieces. P/R/F1 are given at the threshold that maximises each baseline's own F1
    on the same items: their best case.
    """
    labels = np.array([it.label for it in items])
    vectors = embedder.encode([it.full_text for it in items])
    paragraphs = [p.strip() for p in reference.split("\n\n") if len(p.strip()) >= 80]
    results: dict[str, dict[str, float]] = {}
    for name, ref in (
        ("whole_article", embedder.encode([reference])),
        ("reference_paragraphs", embedder.encode(paragraphs or [reference])),
    ):
        cosine = (vectors @ ref.T).max(axis=1)
        threshold = best_f1_threshold(cosine, labels)
        results[name] = {**figures(cosine, cosine >= threshold, labels), "threshold": round(threshold, 4)}
    return results


def report(
    items: Sequence[LabelledItem],
    topics: Sequence[Topic],
    embedder: Embedder,
    reference: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Evaluate the configured topics on labelled items, beside the baselines.

    Returns:
        A JSON-ready dict: ``n``, ``positives``, ``average_precision``, ``precision``,
        ``recall``, ``f1`` (at the configured thresholds), ``recall_by_topic`` (when items
        carry a topic), ``thresholds``, ``baselines``, ``embed_seconds`` and ``items_per_s``.
    """
    labels = np.array([it.label for it in items])
    scored = score_items(items, topics, embedder, progress=progress)
    margin = scored.best_margin
    flagged = margin >= 0
    result: dict[str, object] = {"n": len(items), "positives": int(labels.sum())}
    result.update(figures(margin, flagged, labels))
    by_topic: dict[str, float] = {}
    for name in sorted({it.topic for it in items if it.topic and it.label == 1}):
        mask = np.array([it.topic == name and it.label == 1 for it in items])
        by_topic[name] = round(float(flagged[mask].mean()), 4)
    if by_topic:
        result["recall_by_topic"] = by_topic
    result["thresholds"] = {t.topic_id: t.threshold for t in topics}
    baselines: dict[str, object] = {"keyword": keyword_baseline(items)}
    if reference is not None:
        baselines.update(reference_baselines(items, embedder, reference))
    result["baselines"] = baselines
    result["embed_seconds"] = round(scored.embed_seconds, 2)
    result["items_per_s"] = round(len(items) / scored.embed_seconds, 2) if scored.embed_seconds else None
    return result
