"""Passages and their vectors: bulk inserts, the archive's encoders, and re-embedding."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from monitor.models import Passage
from monitor.store.db import arrow_view, insert_new


def vectors_array(vectors: np.ndarray) -> pa.ListArray:
    """Unit vectors ``(n, dim)`` as an Arrow list column (the ``FLOAT[]`` embedding type)."""
    n, dim = vectors.shape if vectors.ndim == 2 else (0, 0)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(dim), pa.int32())
    return pa.ListArray.from_arrays(offsets, flat)


def passages_table(passages: Sequence[Passage]) -> pa.Table:
    """Passages as an Arrow table shaped like the ``passages`` table."""
    vectors = np.stack([p.vector for p in passages]) if passages else np.zeros((0, 0), np.float32)
    return pa.table(
        {
            "article_id": [p.article_id for p in passages],
            "seq": pa.array([p.seq for p in passages], pa.int32()),
            "text": [p.text for p in passages],
            "embedding": vectors_array(vectors),
            "model": [p.model for p in passages],
            "text_hash": pa.array([p.text_hash or None for p in passages], pa.string()),
        }
    )


def insert_passages(con: duckdb.DuckDBPyConnection, passages: Sequence[Passage]) -> int:
    """Store embedded passages; returns how many were inserted."""
    if not passages:
        return 0
    with arrow_view(con, "batch_passages", passages_table(passages)):
        return len(insert_new(con, "passages", ["article_id", "seq"], "SELECT * FROM batch_passages"))


def replace_passages(
    con: duckdb.DuckDBPyConnection, article_ids: Sequence[str], passages: Sequence[Passage]
) -> int:
    """Replace every passage of the given articles with new ones (call inside a transaction)."""
    with arrow_view(con, "replaced_ids", pa.table({"article_id": list(article_ids)})):
        con.execute("DELETE FROM passages WHERE article_id IN (SELECT article_id FROM replaced_ids)")
    return insert_passages(con, passages)


_TARGET = """
    CASE WHEN $multilingual IS NULL OR a.language IS NULL OR list_contains($primary_languages::VARCHAR[], a.language)
         THEN $primary ELSE $multilingual END
"""


def articles_to_reembed(
    con: duckdb.DuckDBPyConnection,
    primary: str,
    limit: int,
    multilingual: str | None = None,
    primary_languages: Sequence[str] = ("en",),
) -> list[tuple[str, str | None, str, str]]:
    """The next articles whose passages are missing or come from another encoder than their language's.

    Returns:
        Up to ``limit`` ``(article_id, title, text, target encoder)`` rows in id order.
    """
    return con.execute(
        f"""
        SELECT a.article_id, a.title, a.text, {_TARGET} AS target FROM articles a
        WHERE EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.article_id AND p.model <> {_TARGET})
           OR NOT EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.article_id)
        ORDER BY a.article_id
        LIMIT $limit
        """,
        {
            "primary": primary,
            "multilingual": multilingual,
            "primary_languages": list(primary_languages),
            "limit": limit,
        },
    ).fetchall()


def count_to_reembed(
    con: duckdb.DuckDBPyConnection,
    primary: str,
    multilingual: str | None = None,
    primary_languages: Sequence[str] = ("en",),
) -> tuple[int, int]:
    """``(articles still to re-embed, articles in all)``."""
    row = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE NOT coalesce(done, false)), count(*) FROM (
            SELECT a.article_id, bool_and(p.model = {_TARGET}) AS done
            FROM articles a LEFT JOIN passages p USING (article_id) GROUP BY a.article_id, a.language)
        """,
        {"primary": primary, "multilingual": multilingual, "primary_languages": list(primary_languages)},
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def article_vectors(
    con: duckdb.DuckDBPyConnection, article_id: str
) -> tuple[list[int], list[str], np.ndarray, list[str]]:
    """One article's passages: ``(seqs, texts, vectors, models)`` in seq order."""
    rows = con.execute(
        "SELECT seq, text, embedding, model FROM passages WHERE article_id = ? ORDER BY seq", [article_id]
    ).fetchall()
    vectors = np.array([r[2] for r in rows], dtype=np.float32) if rows else np.zeros((0, 0), np.float32)
    return [r[0] for r in rows], [r[1] for r in rows], vectors, [r[3] for r in rows]


def stored_vectors(
    con: duckdb.DuckDBPyConnection, model: str, hashes: Sequence[str]
) -> dict[str, np.ndarray]:
    """Vectors of this encoder already stored for passages with these text hashes."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    with arrow_view(con, "wanted_hashes", pa.table({"text_hash": wanted})):
        rows = con.execute(
            "SELECT p.text_hash, any_value(p.embedding) FROM passages p JOIN wanted_hashes USING (text_hash) "
            "WHERE p.model = ? GROUP BY p.text_hash",
            [model],
        ).fetchall()
    return {r[0]: np.asarray(r[1], dtype=np.float32) for r in rows}
