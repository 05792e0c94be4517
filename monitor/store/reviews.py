"""Reviews: the queue of flagged matches awaiting a verdict, and the verdicts with what was in force."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from monitor.ingest.urls import stable_id
from monitor.models import QueueItem, ReviewDecision

VERDICTS = ("relevant", "not-relevant")

_QUEUE_COLUMNS = """
    m.article_id, m.topic_id, t.name, m.score, m.threshold, a.title, a.url, coalesce(a.site_name, s.name),
    a.published_at, m.matched_at, m.best_passage, m.keyword_hits::VARCHAR, a.language, a.story_id, m.status
"""


def _item(row: Sequence[Any]) -> QueueItem:
    return QueueItem(
        article_id=row[0], topic_id=row[1], topic_name=row[2], score=row[3], threshold=row[4], title=row[5],
        url=row[6], outlet=row[7], published_at=row[8], matched_at=row[9], passage=row[10],
        keyword_hits=json.loads(row[11]) if row[11] else {}, language=row[12], story_id=row[13], status=row[14],
    )  # fmt: skip


def review_queue(
    con: duckdb.DuckDBPyConnection,
    topic_id: str | None = None,
    limit: int = 100,
    include_reviewed: bool = False,
) -> list[QueueItem]:
    """Flagged matches without a verdict, newest first (by when they were matched, then published).

    Args:
        con: the database.
        topic_id: only this topic.
        limit: at most this many.
        include_reviewed: list reviewed matches too (with their verdict as ``status``).
    """
    rows = con.execute(
        f"""
        SELECT {_QUEUE_COLUMNS}
        FROM matches m JOIN articles a USING (article_id) JOIN topics t USING (topic_id)
        LEFT JOIN sources s ON s.source_id = a.source_id
        WHERE ($topic IS NULL OR m.topic_id = $topic) AND ($all OR m.status = 'new')
        ORDER BY m.matched_at DESC, a.published_at DESC NULLS LAST, m.score DESC, m.article_id, m.topic_id
        LIMIT $limit
        """,
        {"topic": topic_id, "all": include_reviewed, "limit": limit},
    ).fetchall()
    return [_item(r) for r in rows]


def queue_item(con: duckdb.DuckDBPyConnection, article_id: str, topic_id: str) -> QueueItem | None:
    """One match as a queue item (whatever its status)."""
    row = con.execute(
        f"""
        SELECT {_QUEUE_COLUMNS}
        FROM matches m JOIN articles a USING (article_id) JOIN topics t USING (topic_id)
        LEFT JOIN sources s ON s.source_id = a.source_id
        WHERE m.article_id = ? AND m.topic_id = ?
        """,
        [article_id, topic_id],
    ).fetchone()
    return _item(row) if row else None


def match_keys(
    con: duckdb.DuckDBPyConnection, key: str, topic_id: str | None = None
) -> list[tuple[str, str]]:
    """``(article_id, topic_id)`` of the matches of an article given by id, id prefix (6+) or URL."""
    rows = con.execute(
        """
        SELECT m.article_id, m.topic_id FROM matches m JOIN articles a USING (article_id)
        WHERE (a.article_id = $key OR a.url = $key OR a.canonical_url = $key
               OR (length($key) >= 6 AND starts_with(a.article_id, $key)))
          AND ($topic IS NULL OR m.topic_id = $topic)
        ORDER BY m.topic_id
        """,
        {"key": key, "topic": topic_id},
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def record_review(con: duckdb.DuckDBPyConnection, decision: ReviewDecision, now: datetime) -> str:
    """Store a verdict with the score, threshold and encoder in force, and set the match's status.

    An article that was not flagged can be reviewed too (a missed story): its review has no score.

    Returns:
        The review's id.

    Raises:
        ValueError: the verdict is not ``relevant`` or ``not-relevant``.
    """
    if decision.verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {decision.verdict!r}")
    review_id = stable_id(f"{decision.article_id}:{decision.topic_id}:{decision.reviewer}:{now.isoformat()}")
    con.execute(
        """
        INSERT INTO reviews (review_id, article_id, topic_id, verdict, note, reviewer, reviewed_at, score, threshold, model)
        SELECT $id, $article, $topic, $verdict, $note, $reviewer, $now, m.score,
               coalesce(m.threshold, (SELECT t.threshold FROM topics t WHERE t.topic_id = $topic)), m.model
        FROM (SELECT 1) LEFT JOIN matches m ON m.article_id = $article AND m.topic_id = $topic
        """,
        {
            "id": review_id, "article": decision.article_id, "topic": decision.topic_id, "verdict": decision.verdict,
            "note": decision.note, "reviewer": decision.reviewer, "now": now,
        },
    )  # fmt: skip
    con.execute(
        "UPDATE matches SET status = ? WHERE article_id = ? AND topic_id = ?",
        [decision.verdict, decision.article_id, decision.topic_id],
    )
    return review_id


def latest_reviews(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """The latest verdict on every reviewed ``(article_id, topic_id)``."""
    rows = con.execute("SELECT article_id, topic_id, verdict FROM review_latest").fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def reviews_table(con: duckdb.DuckDBPyConnection, limit: int = 100) -> tuple[list[str], list[tuple]]:
    """Recent reviews, newest first: ``(columns, rows)``."""
    cur = con.execute(
        """
        SELECT r.reviewed_at, r.reviewer, r.topic_id AS topic, r.verdict, round(r.score, 3) AS score,
               round(r.threshold, 3) AS threshold, a.title, r.note, r.article_id
        FROM reviews r LEFT JOIN articles a USING (article_id) ORDER BY r.reviewed_at DESC LIMIT ?
        """,
        [limit],
    )
    return [d[0] for d in cur.description], cur.fetchall()
