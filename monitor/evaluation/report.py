"""Measure topic matching on labelled articles, beside simple baselines, without a database.

Items are scored exactly as ingest scores articles: the same passages, the configured
encoder's passage role, and :meth:`TopicMatcher.score_articles` with its keyword and
language rules.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.evaluation.labels import LabelledItem
from monitor.evaluation.metrics import best_f1_threshold, figures
from monitor.ingest.language import detect_language
from monitor.matching.embedding import Encoder
from monitor.matching.keywords import scoring_text
from monitor.matching.passages import embed_documents
from monitor.matching.routing import Routing
from monitor.matching.scoring import ArticleText
from monitor.matching.topics import threshold_for
from monitor.models import Topic

# The keyword rule analysts use today (Google-Alerts style), as stated in issue #3.
KEYWORD_RULE = re.compile(
    r"(?is)^(?=.*\b(?:iran|iranian|tehran|irgc|islamic republic)\b)"
    r"(?=.*(?:\bmissile|\bballistic\b|\bjcpoa\b|\bnuclear deal\b|\bnuclear talks\b|\bnuclear program(?:me)?\b))"
)


@dataclass(frozen=True)
class ItemScores:
    """Scores of labelled items: per topic (n x topics, ``-inf`` where a topic's language rule
    excludes the item), each item's thresholds (those of the encoder it was routed to), the
    encoder and language of each item, and the embedding time."""

    scores: np.ndarray
    thresholds: np.ndarray  # n x topics
    embed_seconds: float
    encoders: list[str] = field(default_factory=list)
    languages: list[str | None] = field(default_factory=list)

    @property
    def best_margin(self) -> np.ndarray:
        """Each item's best score minus threshold over topics: >= 0 means flagged."""
        return (self.scores - self.thresholds).max(axis=1)


def score_items(
    items: Sequence[LabelledItem],
    topics: Sequence[Topic],
    encoders: Encoder | Routing,
    words: int = 180,
    overlap: int = 30,
    progress: Callable[[str], None] | None = None,
) -> ItemScores:
    """Score labelled items exactly as ingest scores articles: routed by language, one scoring function.

    Args:
        items: the labelled items; each is routed by the language detected in its text, as at ingest
            (a ``lang`` label only groups the figures, so a misdetected item is scored as ingest would).
        topics: topic profiles.
        encoders: the configured routing (or one encoder for every item).
        words: passage length in words (as ingest: ``MONITOR_PASSAGE_WORDS``).
        overlap: passage overlap in words (``MONITOR_PASSAGE_OVERLAP_WORDS``).
        progress: receives a line of progress now and then.

    Returns:
        Per-topic scores and thresholds, per-item encoders and languages, and the time spent embedding.
    """
    routing = encoders if isinstance(encoders, Routing) else Routing(topics, encoders, strict=False)
    languages = [detect_language(it.text) for it in items]
    names = [routing.encoder_name_for(lang) for lang in languages]
    scores = np.full((len(items), len(topics)), -np.inf)
    thresholds = np.zeros((len(items), len(topics)))
    seconds = 0.0
    for name in dict.fromkeys(names):
        index = [i for i, n in enumerate(names) if n == name]
        group = [items[i] for i in index]
        embedded = embed_documents(
            routing.encoder(name), [(it.title, it.text) for it in group], words, overlap, progress
        )
        seconds += embedded.seconds
        matcher = routing.matcher(name)
        inputs = [
            ArticleText(scoring_text(it.title, it.text), languages[i])
            for i, it in zip(index, group, strict=True)
        ]
        table = matcher.score_articles(embedded.vectors, embedded.starts, inputs)
        for t, topic_scores in enumerate(table):
            scores[index, t] = np.where(topic_scores.eligible, topic_scores.score, -np.inf)
            thresholds[index, t] = topic_scores.topic.threshold
    return ItemScores(scores, thresholds, seconds, names, languages)


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
    encoders: Encoder | Routing,
    reference: str | None = None,
    progress: Callable[[str], None] | None = None,
    words: int = 180,
    overlap: int = 30,
) -> dict[str, object]:
    """Evaluate the configured topics on labelled items, beside the baselines.

    Returns:
        A JSON-ready dict: ``n``, ``positives``, ``average_precision``, ``precision``,
        ``recall``, ``f1`` (at the configured thresholds), ``recall_by_topic`` (when items
        carry a topic), ``by_language`` (when items carry ``lang``: the same figures per
        language, with the encoder each language went to), ``thresholds`` per encoder,
        ``baselines``, ``encoder``, ``embed_seconds`` and ``items_per_s``.
    """
    routing = encoders if isinstance(encoders, Routing) else Routing(topics, encoders, strict=False)
    labels = np.array([it.label for it in items])
    scored = score_items(items, topics, routing, words, overlap, progress)
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
    if any(it.lang for it in items):
        result["by_language"] = by_language(items, scored, labels)
    used = list(dict.fromkeys(scored.encoders))
    result["thresholds"] = {
        name: dict(
            zip(
                [t.topic_id for t in topics], [t.threshold for t in routing.matcher(name).topics], strict=True
            )
        )
        for name in used
    }
    missing = sorted(
        {f"{t.topic_id} ({name})" for name in used for t in topics if threshold_for(t, name) is None}
    )
    if missing:
        result["thresholds_note"] = (
            f"no thresholds fitted for {', '.join(missing)}: the default encoder's were used"
        )
    baselines: dict[str, object] = {"keyword": keyword_baseline(items)}
    if reference is not None:
        baselines.update(reference_baselines(items, routing.primary, reference))
    result["baselines"] = baselines
    result["encoder"] = used[0] if len(used) == 1 else used
    result["embed_seconds"] = round(scored.embed_seconds, 2)
    result["items_per_s"] = round(len(items) / scored.embed_seconds, 2) if scored.embed_seconds else None
    return result


def by_language(
    items: Sequence[LabelledItem], scored: ItemScores, labels: np.ndarray
) -> dict[str, dict[str, object]]:
    """The evaluation figures of each language's items, with the encoder they went to."""
    margin = scored.best_margin
    out: dict[str, dict[str, object]] = {}
    for lang in sorted({it.lang or "?" for it in items}):
        mask = np.array([(it.lang or "?") == lang for it in items])
        encoders = sorted({scored.encoders[i] for i in np.flatnonzero(mask)})
        detected = Counter(str(scored.languages[i]) for i in np.flatnonzero(mask))
        out[lang] = {
            "n": int(mask.sum()),
            "positives": int(labels[mask].sum()),
            **figures(margin[mask], margin[mask] >= 0, labels[mask]),
            "encoder": encoders[0] if len(encoders) == 1 else encoders,
        }
        if set(detected) != {lang}:  # routed by what detection said, which is worth seeing
            out[lang]["detected_as"] = dict(detected.most_common())
    return out
