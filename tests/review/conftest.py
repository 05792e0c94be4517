"""A database of articles with planted scores and analysts' verdicts on them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monitor import store
from monitor.models import Match, Passage, ReviewDecision, Topic
from monitor.pipeline import store_batch
from monitor.store import reviews
from tests.doubles import PlantedEncoder, vector_with_score
from tests.rows import FEED, article, start_run

# Thresholds fitted "for" the planted encoder (every encoder other than the default needs its own).
PLANTED = (("planted-test", 0.5),)
UP = Topic(
    "up", "Too loose", "Flags look-alikes just above its threshold.", ("e",), (), 0.5, thresholds=PLANTED
)
DOWN = Topic(
    "down",
    "Too strict",
    "Misses relevant stories just below its threshold.",
    ("e",),
    (),
    0.5,
    thresholds=PLANTED,
)


def planted_db(db: Path, scored: Sequence[tuple[int, float, str | None, str | None]]) -> None:
    """Articles with one passage each of a planted score; matches where score >= 0.5; verdicts as given.

    Args:
        db: the database file.
        scored: ``(article number, score, topic reviewed, verdict)``.
    """
    encoder = PlantedEncoder()
    with store.connect(db) as con:
        store.sync_sources(con, [FEED])
        store.save_topics(con, [UP, DOWN])
        run = start_run(con)
        for n, score, _, _ in scored:
            a = article(n)
            passage = Passage(a.article_id, 0, f"passage {n}", vector_with_score(score), encoder.name)
            matches = [
                Match(a.article_id, t.topic_id, score, t.threshold, 0, passage.text, "e", encoder.name)
                for t in (UP, DOWN)
                if score >= t.threshold
            ]
            store_batch(con, run, [a], [passage], matches, [])
        for n, _, topic, verdict in scored:
            if topic and verdict:
                decision = ReviewDecision(article(n).article_id, topic, verdict, "fixture")
                reviews.record_review(con, decision, store.now_utc())
