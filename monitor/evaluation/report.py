"""Measure topic matching on labelled articles, beside simple baselines, without a database.

Items are scored exactly as ingest scores articles: the same passages, the configured
encoder's passage role, and :meth:`TopicMatcher.score_articles` with its keyword and
language rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.evaluation.labels import LabelledItem
from monitor.evaluation.metrics import best_f1_threshold, figures
from monitor.ingest.language import detect_language
from monitor.matching.embedding import Encoder
from monitor.matching.keywords import scoring_text
from monitor.matching.passages import embed_documents
from monitor.matching.scoring import ArticleText, TopicMatcher
from monitor.matching.topics import threshold_for
from monitor.models import Topic

# The keyword rule analysts use today (Google-Alerts style), as stated in issue #3.
KEYWORD_RULE = re.compile(
    r"(?is)^(?=.*\b(?:iran|iranian|tehran|irgc|islamic republic)\b)"
    r"(?=.*(?:\bmissile|\bballistic\b|\bjcpoa\b|\bnuclear deal\b|\bnuclear talks\b|\bnuclear program(?:me)?\b))"
)


@dataclass(frozen=True)
class ItemScores:
    """Scores of labelled items: per topic (n x topics, ``-inf`` where a topic's language
    rule excludes the item) and the embedding time."""

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
    encoder: Encoder,
    words: int = 180,
    overlap: int = 30,
    progress: Callable[[str], None] | None = None,
) -> ItemScores:
    """Score labelled items with the scoring function ingest uses.

    Args:
        items: the labelled items.
        topics: topic profiles.
        encoder: the configured encoder.
        words: passage length in words (as ingest: ``MONITOR_PASSAGE_WORDS``).
        overlap: passage overlap in words (``MONITOR_PASSAGE_OVERLAP_WORDS``).
        progress: receives a line of progress now and then.

    Returns:
        Per-topic scores and the time spent embedding.
    """
    embedded = embed_documents(encoder, [(it.title, it.text) for it in items], words, overlap, progress)
    matcher = TopicMatcher(topics, encoder, strict=False)
    need_language = any(t.language for t in topics)
    inputs = [
        ArticleText(
            scoring_text(it.title, it.text),
            it.lang or (detect_language(it.text) if need_language else None),
        )
        for it in items
    ]
    table = matcher.score_articles(embedded.vectors, embedded.starts, inputs)
    columns = [np.where(t.eligible, t.score, -np.inf) for t in table]
    scores = np.stack(columns, axis=1) if columns else np.zeros((len(items), 0))
    return ItemScores(scores, np.array([t.threshold for t in matcher.topics]), embedded.seconds)


def keyword_baseline(items: Sequence[LabelledItem]) -> dict[str, float]:
    """Figures for the keyword rule (a yes/no rule, so its AP counts ties as one step)."""
    hits = np.array([bool(KEYWORD_RULE.search(it.full_text)) for it in items])
    labels = np.array([it.label for it in items])
    return figures(hits.astype(float), hits, labels)


def reference_baselines(
    items: Sequence[LabelledItem], encoder: Encoder, reference: str
) -> dict[str, dict[str, float]]:
    """Figures for two ways of comparing each item with a reference article.

    * ``whole_article``: one cosine between the item and the whole reference article;
    * ``reference_paragraphs``: the best cosine between the item and any paragraph of it.

    Each item is embedded in one pass, so the model reads only its first 256 word
    pieces. P/R/F1 are given at the threshold that maximises each baseline's own F1
    on the same items: their best case.
    """
    labels = np.array([it.label for it in items])
    vectors = encoder.encode_passages([it.full_text for it in items])
    paragraphs = [p.strip() for p in reference.split("\n\n") if len(p.strip()) >= 80]
    results: dict[str, dict[str, float]] = {}
    for name, ref in (
        ("whole_article", encoder.encode_queries([reference])),
        ("reference_paragraphs", encoder.encode_queries(paragraphs or [reference])),
    ):
        cosine = (vectors @ ref.T).max(axis=1)
        threshold = best_f1_threshold(cosine, labels)
        results[name] = {**figures(cosine, cosine >= threshold, labels), "threshold": round(threshold, 4)}
    return results


def report(
    items: Sequence[LabelledItem],
    topics: Sequence[Topic],
    encoder: Encoder,
    reference: str | None = None,
    progress: Callable[[str], None] | None = None,
    words: int = 180,
    overlap: int = 30,
) -> dict[str, object]:
    """Evaluate the configured topics on labelled items, beside the baselines.

    Returns:
        A JSON-ready dict: ``n``, ``positives``, ``average_precision``, ``precision``,
        ``recall``, ``f1`` (at the configured thresholds), ``recall_by_topic`` (when items
        carry a topic), ``thresholds``, ``baselines``, ``embed_seconds`` and ``items_per_s``.
    """
    labels = np.array([it.label for it in items])
    scored = score_items(items, topics, encoder, words, overlap, progress)
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
    result["thresholds"] = dict(zip([t.topic_id for t in topics], map(float, scored.thresholds), strict=True))
    missing = [t.topic_id for t in topics if threshold_for(t, encoder.name) is None]
    if missing:
        result["thresholds_note"] = (
            f"no thresholds fitted for {encoder.name} in {missing}: the default encoder's were used"
        )
    baselines: dict[str, object] = {"keyword": keyword_baseline(items)}
    if reference is not None:
        baselines.update(reference_baselines(items, encoder, reference))
    result["baselines"] = baselines
    result["encoder"] = encoder.name
    result["embed_seconds"] = round(scored.embed_seconds, 2)
    result["items_per_s"] = round(len(items) / scored.embed_seconds, 2) if scored.embed_seconds else None
    return result
