"""Matches and the topics they were scored against."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from monitor.models import Match, Topic
from monitor.store.db import arrow_view, insert_new, now_utc, upsert


def matches_table(matches: Sequence[Match]) -> pa.Table:
    """Matches as an Arrow table of their evidence columns (status, time and run are added in SQL)."""
    return pa.table(
        {
            "article_id": pa.array([m.article_id for m in matches], pa.string()),
            "topic_id": pa.array([m.topic_id for m in matches], pa.string()),
            "score": pa.array([m.score for m in matches], pa.float64()),
            "threshold": pa.array([m.threshold for m in matches], pa.float64()),
            "best_passage_seq": pa.array([m.best_passage_seq for m in matches], pa.int32()),
            "best_passage": pa.array([m.best_passage for m in matches], pa.string()),
            "exemplar": pa.array([m.exemplar for m in matches], pa.string()),
            "model": pa.array([m.model for m in matches], pa.string()),
            "embedding_score": pa.array([m.embedding_score for m in matches], pa.float64()),
            "keyword_hits": pa.array(
                [json.dumps(m.keyword_hits, sort_keys=True) for m in matches], pa.string()
            ),
        }
    )


def insert_matches(
    con: duckdb.DuckDBPyConnection, matches: Sequence[Match], run_id: str, now: datetime
) -> list[tuple[str, str]]:
    """Store new matches (status ``new``); returns the ``(article_id, topic_id)`` pairs inserted."""
    if not matches:
        return []
    with arrow_view(con, "batch_matches", matches_table(matches)):
        rows = insert_new(
            con,
            "matches",
            ["article_id", "topic_id"],
            "SELECT *, 'new' AS status, $now AS matched_at, $run AS run_id FROM batch_matches",
            {"now": now, "run": run_id},
            returning=["article_id", "topic_id"],
        )
    return [(r[0], r[1]) for r in rows]


def save_topics(con: duckdb.DuckDBPyConnection, topics: Sequence[Topic]) -> None:
    """Upsert the topic profiles in force, so matches can be audited against them."""
    table = pa.table(
        {
            "topic_id": [t.topic_id for t in topics],
            "name": [t.name for t in topics],
            "description": [t.description for t in topics],
            "threshold": [t.threshold for t in topics],
            "exemplars": pa.array([list(t.exemplars) for t in topics], pa.list_(pa.string())),
            "negatives": pa.array([list(t.negatives) for t in topics], pa.list_(pa.string())),
            "keywords": pa.array([list(t.keywords) for t in topics], pa.list_(pa.string())),
            "keyword_penalty": [t.keyword_penalty for t in topics],
            "language": pa.array([t.language for t in topics], pa.string()),
        }
    )
    with arrow_view(con, "incoming_topics", table):
        upsert(
            con,
            "topics",
            ["topic_id"],
            "SELECT *, ? AS updated_at FROM incoming_topics",
            "name = excluded.name, description = excluded.description, threshold = excluded.threshold, "
            "exemplars = excluded.exemplars, negatives = excluded.negatives, keywords = excluded.keywords, "
            "keyword_penalty = excluded.keyword_penalty, language = excluded.language, "
            "updated_at = excluded.updated_at",
            [now_utc()],
        )


def match_evidence(con: duckdb.DuckDBPyConnection, article_id: str) -> list[dict[str, Any]]:
    """Every match of an article with the evidence recorded when it was scored."""
    cur = con.execute(
        """
        SELECT topic_id, score, threshold, embedding_score, keyword_hits, exemplar, best_passage_seq,
               best_passage, status, model, matched_at
        FROM matches WHERE article_id = ? ORDER BY score - threshold DESC
        """,
        [article_id],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run_matches(
    con: duckdb.DuckDBPyConnection, run_id: str
) -> list[tuple[str, str, float, str | None, str, str | None]]:
    """A run's new matches: ``(topic_id, topic name, score, title, url, outlet)``, best first per topic."""
    return con.execute(
        """
        SELECT m.topic_id, t.name, m.score, a.title, a.url, coalesce(a.site_name, s.name)
        FROM matches m JOIN articles a USING (article_id) JOIN topics t USING (topic_id)
        LEFT JOIN sources s ON s.source_id = a.source_id
        WHERE m.run_id = ? ORDER BY m.topic_id, m.score DESC
        """,
        [run_id],
    ).fetchall()
