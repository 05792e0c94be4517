"""Articles, passages, matches, page failures and topics: one transaction per batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from monitor import stories
from monitor.embed import DIMENSION
from monitor.models import (
    Article,
    Match,
    PageFailure,
    Passage,
    Topic,
)
from monitor.store.db import arrow_view, now_utc
from monitor.urls import stable_id

# Syndicated copies arrive within days of each other; older stories are not searched.
STORY_WINDOW = timedelta(days=14)


def save_batch(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    articles: Sequence[Article],
    passages: Sequence[Passage],
    matches: Sequence[Match],
    failures: Sequence[PageFailure],
    model: str,
) -> dict[str, int]:
    """Write one batch's articles, passages, stories, matches, alerts and failures atomically.

    A run killed mid-way therefore leaves whole batches or nothing, and the next run
    picks up the articles that are missing. An article whose canonical URL or normalised
    text is already stored becomes an alias of the stored one (its feed sighting still
    counts); every new article joins the story it duplicates or starts its own; alerts
    are one per story and topic.

    Args:
        con: the database.
        run_id: the current run.
        articles: extracted articles.
        passages: their embedded passages.
        matches: matches found among them.
        failures: pages of this batch that could not become articles.
        model: name of the embedding model that produced the passages.

    Returns:
        Counts of rows actually inserted: ``articles``, ``aliases``, ``stories``,
        ``passages``, ``matches``, ``alerts``.
    """
    now = now_utc()
    counts = {"articles": 0, "aliases": 0, "stories": 0, "passages": 0, "matches": 0, "alerts": 0}
    con.execute("BEGIN")
    try:
        fresh, aliases = _split_duplicates(con, articles)
        counts["aliases"] = _insert_aliases(con, aliases, now)
        kept = {a.article_id for a in fresh}
        if fresh:
            stories = _assign_stories(con, fresh, now)
            counts["stories"] = len({s for a, s in stories.items() if s == a})
            with arrow_view(con, "batch_articles", _articles_table(fresh, run_id, stories)):
                counts["articles"] = len(
                    con.execute(
                        "INSERT INTO articles BY NAME SELECT * FROM batch_articles "
                        "ON CONFLICT DO NOTHING RETURNING article_id"
                    ).fetchall()
                )
        done = pa.table(
            {"article_id": [a.article_id for a in articles] + [a.entry_id for a in articles if a.entry_id]}
        )
        with arrow_view(con, "stored_ids", done):
            con.execute("DELETE FROM page_failures WHERE article_id IN (SELECT article_id FROM stored_ids)")
        passages = [p for p in passages if p.article_id in kept]
        if passages:
            with arrow_view(con, "batch_passages", _passages_table(passages, model)):
                counts["passages"] = len(
                    con.execute(
                        "INSERT INTO passages BY NAME SELECT * FROM batch_passages "
                        "ON CONFLICT DO NOTHING RETURNING seq"
                    ).fetchall()
                )
        matches = [m for m in matches if m.article_id in kept]
        if matches:
            with arrow_view(con, "batch_matches", _matches_table(matches, run_id, now)):
                inserted = con.execute(
                    "INSERT INTO matches BY NAME SELECT * FROM batch_matches "
                    "ON CONFLICT DO NOTHING RETURNING article_id, topic_id"
                ).fetchall()
            counts["matches"] = len(inserted)
            counts["alerts"] = queue_alerts(con, inserted, now)
        if failures:
            record_failures(con, failures, now)
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise
    return counts


def _split_duplicates(
    con: duckdb.DuckDBPyConnection, articles: Sequence[Article]
) -> tuple[list[Article], list[tuple[str, str, str, str]]]:
    """Separate new articles from copies of stored ones (same canonical URL or same text)."""
    table = pa.table(
        {"article_id": [a.article_id for a in articles], "text_hash": [a.text_hash for a in articles]}
    )
    with arrow_view(con, "candidates", table):
        by_id = {r[0] for r in con.execute(
            "SELECT c.article_id FROM candidates c JOIN articles a USING (article_id)"
        ).fetchall()}  # fmt: skip
        by_text = dict(con.execute(
            "SELECT c.text_hash, min(a.article_id) FROM candidates c JOIN articles a "
            "ON a.text_hash = c.text_hash AND c.text_hash <> '' GROUP BY c.text_hash"
        ).fetchall())  # fmt: skip
    fresh: list[Article] = []
    aliases: list[tuple[str, str, str, str]] = []  # alias id, article id, url, reason
    for article in articles:
        if article.article_id in by_id:
            target = article.article_id
        elif article.text_hash and article.text_hash in by_text:
            target = by_text[article.text_hash]
            aliases.append((article.article_id, target, article.url, "same-text"))
        else:
            fresh.append(article)
            target = article.article_id
            if article.text_hash:
                by_text[article.text_hash] = target
            by_id.add(target)
        if article.entry_id and article.entry_id != target:
            aliases.append((article.entry_id, target, article.url, "canonical-link"))
    return fresh, aliases


def _insert_aliases(
    con: duckdb.DuckDBPyConnection, aliases: Sequence[tuple[str, str, str, str]], now: datetime
) -> int:
    if not aliases:
        return 0
    table = pa.table(
        {name: [a[i] for a in aliases] for i, name in enumerate(("alias_id", "article_id", "url", "reason"))}
    )
    with arrow_view(con, "batch_aliases", table):
        return len(
            con.execute(
                "INSERT INTO article_aliases SELECT *, ? FROM batch_aliases ON CONFLICT DO NOTHING RETURNING 1",
                [now],
            ).fetchall()
        )


def _assign_stories(
    con: duckdb.DuckDBPyConnection, fresh: Sequence[Article], now: datetime
) -> dict[str, str]:
    """Sign the new articles, find the stories they belong to, and record new stories."""
    signatures = [stories.signature(a.article_id, a.text) for a in fresh]
    known = [
        (stories.Signature(article_id, shingles, np.asarray(values, dtype=np.uint32)), story_id)
        for article_id, shingles, values, story_id in con.execute(
            """
            SELECT s.article_id, s.shingles, s.minhash, a.story_id
            FROM article_signatures s JOIN articles a USING (article_id)
            WHERE s.created_at >= ? AND a.story_id IS NOT NULL
            """,
            [now - STORY_WINDOW],
        ).fetchall()
    ]
    assigned = stories.assign(signatures, known)
    sig_table = pa.table(
        {
            "article_id": [s.article_id for s in signatures],
            "shingles": pa.array([s.shingles for s in signatures], pa.int32()),
            "minhash": pa.array([s.values.tolist() for s in signatures], pa.list_(pa.uint32())),
        }
    )
    with arrow_view(con, "batch_signatures", sig_table):
        con.execute(
            "INSERT INTO article_signatures SELECT article_id, shingles, minhash, ? FROM batch_signatures "
            "ON CONFLICT DO NOTHING",
            [now],
        )
    new_stories = [a for a in fresh if assigned[a.article_id] == a.article_id]
    if new_stories:
        table = pa.table(
            {
                "story_id": [a.article_id for a in new_stories],
                "first_article_id": [a.article_id for a in new_stories],
                "first_source_id": [a.source_id for a in new_stories],
                "title": pa.array([a.title for a in new_stories], pa.string()),
            }
        )
        with arrow_view(con, "batch_stories", table):
            con.execute(
                "INSERT INTO stories BY NAME SELECT *, ? AS first_seen_at FROM batch_stories ON CONFLICT DO NOTHING",
                [now],
            )
    return assigned


def queue_alerts(con: duckdb.DuckDBPyConnection, matched: Sequence[tuple[str, str]], now: datetime) -> int:
    """Queue one alert per story and topic: a syndicated copy of an alerted story adds none."""
    table = pa.table({"article_id": [a for a, _ in matched], "topic_id": [t for _, t in matched]})
    with arrow_view(con, "new_matches", table):
        # The story's own first article speaks for it, else the earliest published copy.
        rows = con.execute(
            "SELECT n.article_id, n.topic_id, coalesce(a.story_id, n.article_id) AS story FROM new_matches n "
            "JOIN articles a USING (article_id) "
            "ORDER BY a.article_id = story DESC, a.published_at NULLS LAST, a.article_id"
        ).fetchall()
    chosen: dict[str, tuple[str, str]] = {}
    for article_id, topic_id, story in rows:
        chosen.setdefault(stable_id(f"{story}:{topic_id}"), (article_id, topic_id))
    alerts = pa.table(
        {
            "alert_id": list(chosen),
            "article_id": [a for a, _ in chosen.values()],
            "topic_id": [t for _, t in chosen.values()],
        }
    )
    with arrow_view(con, "batch_alerts", alerts):
        return len(
            con.execute(
                "INSERT INTO alerts (alert_id, article_id, topic_id, created_at) "
                "SELECT alert_id, article_id, topic_id, ? FROM batch_alerts "
                "ON CONFLICT DO NOTHING RETURNING alert_id",
                [now],
            ).fetchall()
        )


def record_failures(
    con: duckdb.DuckDBPyConnection, failures: Sequence[PageFailure], now: datetime | None = None
) -> None:
    """Record pages that could not become articles; repeated failures count attempts."""
    now = now or now_utc()
    table = pa.table(
        {
            "article_id": [f.entry.article_id for f in failures],
            "canonical_url": [f.entry.canonical_url for f in failures],
            "url": [f.entry.url for f in failures],
            "source_id": [f.entry.source_id for f in failures],
            "status": [f.status.value for f in failures],
            "http_status": pa.array([f.http_status for f in failures], pa.int32()),
            "error": [f.error for f in failures],
        }
    )
    with arrow_view(con, "batch_failures", table):
        con.execute(
            """
            INSERT INTO page_failures
            SELECT article_id, canonical_url, url, source_id, status, http_status, error, 1, $now, $now
            FROM batch_failures
            ON CONFLICT (article_id) DO UPDATE SET
                status = excluded.status, http_status = excluded.http_status, error = excluded.error,
                attempts = page_failures.attempts + 1, last_failed_at = excluded.last_failed_at
            """,
            {"now": now},
        )


def _articles_table(articles: Sequence[Article], run_id: str, story_of: dict[str, str]) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "article_id": [a.article_id for a in articles],
            "canonical_url": [a.canonical_url for a in articles],
            "url": [a.url for a in articles],
            "source_id": [a.source_id for a in articles],
            "title": pa.array([a.title for a in articles], pa.string()),
            "author": pa.array([a.author for a in articles], pa.string()),
            "published_at": pa.array([a.published_at for a in articles], ts),
            "date_method": [a.date_method for a in articles],
            "language": pa.array([a.language for a in articles], pa.string()),
            "site_name": pa.array([a.site_name for a in articles], pa.string()),
            "text": [a.text for a in articles],
            "word_count": pa.array([a.word_count for a in articles], pa.int32()),
            "extract_method": [a.extract_method for a in articles],
            "fetched_at": pa.array([a.fetched_at for a in articles], ts),
            "run_id": [run_id] * len(articles),
            "text_hash": [a.text_hash or None for a in articles],
            "story_id": [story_of.get(a.article_id, a.article_id) for a in articles],
        }
    )


def _passages_table(passages: Sequence[Passage], model: str) -> pa.Table:
    flat = np.ascontiguousarray(np.stack([p.vector for p in passages]), dtype=np.float32).ravel()
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat), DIMENSION)
    return pa.table(
        {
            "article_id": [p.article_id for p in passages],
            "seq": pa.array([p.seq for p in passages], pa.int32()),
            "text": [p.text for p in passages],
            "embedding": vectors,
            "model": [model] * len(passages),
        }
    )


def _matches_table(matches: Sequence[Match], run_id: str, now: datetime) -> pa.Table:
    return pa.table(
        {
            "article_id": [m.article_id for m in matches],
            "topic_id": [m.topic_id for m in matches],
            "score": [m.score for m in matches],
            "threshold": [m.threshold for m in matches],
            "best_passage_seq": pa.array([m.best_passage_seq for m in matches], pa.int32()),
            "best_passage": [m.best_passage for m in matches],
            "exemplar": [m.exemplar for m in matches],
            "model": [m.model for m in matches],
            "status": ["new"] * len(matches),
            "matched_at": pa.array([now] * len(matches), pa.timestamp("us", tz="UTC")),
            "run_id": [run_id] * len(matches),
            "embedding_score": [m.embedding_score for m in matches],
            "keyword_hits": [json.dumps(m.keyword_hits, sort_keys=True) for m in matches],
        }
    )


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
        con.execute(
            """
            INSERT INTO topics BY NAME SELECT *, ? AS updated_at FROM incoming_topics
            ON CONFLICT (topic_id) DO UPDATE SET
                name = excluded.name, description = excluded.description, threshold = excluded.threshold,
                exemplars = excluded.exemplars, negatives = excluded.negatives, keywords = excluded.keywords,
                keyword_penalty = excluded.keyword_penalty, language = excluded.language,
                updated_at = excluded.updated_at
            """,
            [now_utc()],
        )


def find_article(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any] | None:
    """Find an article by id, id prefix (at least 6 characters), URL or canonical URL."""
    row = con.execute(
        """
        SELECT article_id, title, url, site_name, published_at, date_method, word_count, extract_method
        FROM articles
        WHERE article_id = $key OR url = $key OR canonical_url = $key
           OR (length($key) >= 6 AND starts_with(article_id, $key))
        ORDER BY article_id = $key DESC
        LIMIT 1
        """,
        {"key": key},
    ).fetchone()
    if row is None:
        return None
    names = (
        "article_id",
        "title",
        "url",
        "site_name",
        "published_at",
        "date_method",
        "word_count",
        "extract_method",
    )
    return dict(zip(names, row, strict=True))


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
