"""Articles, aliases, story rows, signatures and page failures: rows written as they are given.

Which copy is new, which story an article joins and which copy carries an alert are
decided by the caller (``monitor.stories``, ``monitor.alerts``); these functions read the
state those decisions need and write their results in bulk through Arrow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from monitor.models import Alias, Article, PageFailure, StoryStart
from monitor.store.db import arrow_view, insert_new, now_utc, upsert

TIMESTAMP = pa.timestamp("us", tz="UTC")


def stored_duplicates(
    con: duckdb.DuckDBPyConnection, articles: Sequence[Article]
) -> tuple[set[str], dict[str, str]]:
    """Which of these articles are stored already, by id, and which stored article has each text.

    Returns:
        ``(ids already stored, {text_hash: stored article id})`` for the given articles.
    """
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
    return by_id, by_text


def insert_aliases(con: duckdb.DuckDBPyConnection, aliases: Sequence[Alias], now: datetime) -> int:
    """Record other URLs of stored articles; returns the number of new aliases."""
    if not aliases:
        return 0
    table = pa.table(
        {
            "alias_id": [a.alias_id for a in aliases],
            "article_id": [a.article_id for a in aliases],
            "url": [a.url for a in aliases],
            "reason": [a.reason for a in aliases],
        }
    )
    with arrow_view(con, "batch_aliases", table):
        return len(
            insert_new(
                con, "article_aliases", ["alias_id"], "SELECT *, ? AS created_at FROM batch_aliases", [now]
            )
        )


def recent_signatures(
    con: duckdb.DuckDBPyConnection, since: datetime
) -> list[tuple[str, int, np.ndarray, str]]:
    """Signatures of articles stored since a time, with their stories.

    Returns:
        ``(article_id, shingles, minhash values, story_id)`` rows.
    """
    # Arrow, not fetchall: a busy window holds tens of thousands of signatures, and 128
    # Python ints a row cost about 100x the memory and time of one uint32 matrix.
    table = con.execute(
        """
        SELECT s.article_id, s.shingles, s.minhash, a.story_id
        FROM article_signatures s JOIN articles a USING (article_id)
        WHERE s.created_at >= ? AND a.story_id IS NOT NULL
        """,
        [since],
    ).fetch_arrow_table()
    if table.num_rows == 0:
        return []
    minhash = table.column("minhash").combine_chunks()
    matrix = minhash.flatten().to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
    matrix = matrix.reshape(table.num_rows, -1)
    ids = table.column("article_id").to_pylist()
    shingles = table.column("shingles").to_pylist()
    stories_ = table.column("story_id").to_pylist()
    return [(ids[i], shingles[i], matrix[i], stories_[i]) for i in range(table.num_rows)]


def insert_signatures(
    con: duckdb.DuckDBPyConnection, signatures: Sequence[tuple[str, int, np.ndarray]], now: datetime
) -> None:
    """Store MinHash signatures ``(article_id, shingles, values)``."""
    if not signatures:
        return
    table = pa.table(
        {
            "article_id": [s[0] for s in signatures],
            "shingles": pa.array([s[1] for s in signatures], pa.int32()),
            "minhash": pa.array([s[2].tolist() for s in signatures], pa.list_(pa.uint32())),
        }
    )
    with arrow_view(con, "batch_signatures", table):
        insert_new(
            con,
            "article_signatures",
            ["article_id"],
            "SELECT article_id, shingles, minhash, ? AS created_at FROM batch_signatures",
            [now],
        )


def insert_stories(con: duckdb.DuckDBPyConnection, starts: Sequence[StoryStart], now: datetime) -> int:
    """Record new stories; returns how many were new."""
    if not starts:
        return 0
    table = pa.table(
        {
            "story_id": [s.story_id for s in starts],
            "first_article_id": [s.first_article_id for s in starts],
            "first_source_id": [s.first_source_id for s in starts],
            "title": pa.array([s.title for s in starts], pa.string()),
        }
    )
    with arrow_view(con, "batch_stories", table):
        return len(
            insert_new(con, "stories", ["story_id"], "SELECT *, ? AS first_seen_at FROM batch_stories", [now])
        )


def insert_articles(
    con: duckdb.DuckDBPyConnection, articles: Sequence[Article], run_id: str, story_of: Mapping[str, str]
) -> int:
    """Store new articles, each with its story; returns how many were inserted."""
    if not articles:
        return 0
    table = pa.table(
        {
            "article_id": [a.article_id for a in articles],
            "canonical_url": [a.canonical_url for a in articles],
            "url": [a.url for a in articles],
            "source_id": [a.source_id for a in articles],
            "title": pa.array([a.title for a in articles], pa.string()),
            "author": pa.array([a.author for a in articles], pa.string()),
            "published_at": pa.array([a.published_at for a in articles], TIMESTAMP),
            "date_method": [a.date_method for a in articles],
            "language": pa.array([a.language for a in articles], pa.string()),
            "site_name": pa.array([a.site_name for a in articles], pa.string()),
            "text": [a.text for a in articles],
            "word_count": pa.array([a.word_count for a in articles], pa.int32()),
            "extract_method": [a.extract_method for a in articles],
            "fetched_at": pa.array([a.fetched_at for a in articles], TIMESTAMP),
            "run_id": [run_id] * len(articles),
            "text_hash": [a.text_hash or None for a in articles],
            "story_id": [story_of.get(a.article_id, a.article_id) for a in articles],
        }
    )
    with arrow_view(con, "batch_articles", table):
        return len(insert_new(con, "articles", ["article_id"], "SELECT * FROM batch_articles"))


def clear_failures(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]) -> None:
    """Forget earlier page failures of articles that are now stored (or aliased)."""
    if not article_ids:
        return
    with arrow_view(con, "stored_ids", pa.table({"article_id": list(article_ids)})):
        con.execute("DELETE FROM page_failures WHERE article_id IN (SELECT article_id FROM stored_ids)")


def record_failures(
    con: duckdb.DuckDBPyConnection, failures: Sequence[PageFailure], now: datetime | None = None
) -> None:
    """Record pages that could not become articles; repeated failures count attempts."""
    if not failures:
        return
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
        upsert(
            con,
            "page_failures",
            ["article_id"],
            "SELECT article_id, canonical_url, url, source_id, status, http_status, error, 1 AS attempts, "
            "$now AS first_failed_at, $now AS last_failed_at FROM batch_failures",
            "status = excluded.status, http_status = excluded.http_status, error = excluded.error, "
            "attempts = page_failures.attempts + 1, last_failed_at = excluded.last_failed_at",
            {"now": now},
        )


def find_article(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any] | None:
    """Find an article by id, id prefix (at least 6 characters), URL or canonical URL."""
    cur = con.execute(
        """
        SELECT article_id, title, url, site_name, published_at, date_method, word_count, extract_method,
               language, text
        FROM articles
        WHERE article_id = $key OR url = $key OR canonical_url = $key
           OR (length($key) >= 6 AND starts_with(article_id, $key))
        ORDER BY article_id = $key DESC
        LIMIT 1
        """,
        {"key": key},
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))
