"""Reads and writes for rescoring: stored passage vectors in chunks, and match replacement."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.models import Match
from monitor.store.db import arrow_view, changed, insert_new, now_utc
from monitor.store.db import cursor as db_cursor
from monitor.store.matches import matches_table


def iter_passage_vectors(
    con: duckdb.DuckDBPyConnection, chunk_articles: int = 20_000, article_ids: Sequence[str] | None = None
) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[str]]]:
    """Stream stored passage vectors, a chunk of whole articles at a time.

    Args:
        con: the database.
        chunk_articles: about this many articles per chunk.
        article_ids: only these articles (default: all).

    Yields:
        ``(article_ids, starts, vectors, seqs, models)``: the chunk's article ids, the index of
        each article's first passage, the unit vectors ``(n, dim)``, each passage's seq, and
        the encoder of each article's passages. A chunk holds one encoder's vectors only.
    """
    # One ordered scan, read in record batches; an article cut by a batch boundary is
    # carried over to the next chunk so that every chunk holds whole articles. The scan runs
    # on its own cursor: the caller queries ``con`` between chunks, which would otherwise end
    # the stream early without an error.
    cursor = db_cursor(con)
    reader = cursor.execute(
        "SELECT article_id, seq, embedding, model FROM passages "
        "WHERE $ids IS NULL OR list_contains($ids::VARCHAR[], article_id) ORDER BY model, article_id, seq",
        {"ids": None if article_ids is None else list(article_ids)},
    ).fetch_record_batch(chunk_articles * 4)
    carry: pa.Table | None = None
    for batch in reader:
        table = pa.Table.from_batches([batch])
        if carry is not None:
            table = pa.concat_tables([carry, table])
        owners = table.column("article_id").to_numpy(zero_copy_only=False)
        models = table.column("model").to_numpy(zero_copy_only=False)
        # Cut before the last article (it may continue in the next batch), and where the encoder changes.
        different = np.flatnonzero(owners != owners[-1])
        last_start = int(different[-1] + 1) if len(different) else 0
        carry = table.slice(last_start)
        head = table.slice(0, last_start)
        for part in _by_model(head, models[:last_start]):
            yield _chunk(part)
    if carry is not None and carry.num_rows:
        for part in _by_model(carry, carry.column("model").to_numpy(zero_copy_only=False)):
            yield _chunk(part)


def _by_model(table: pa.Table, models: np.ndarray) -> Iterator[pa.Table]:
    """Split rows ordered by model into one table per model."""
    if not table.num_rows:
        return
    cuts = [0, *(np.flatnonzero(models[1:] != models[:-1]) + 1).tolist(), table.num_rows]
    for a, b in itertools.pairwise(cuts):
        yield table.slice(a, b - a)


def _chunk(table: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[str]]:
    owners = table.column("article_id").to_numpy(zero_copy_only=False)
    embedding = table.column("embedding").combine_chunks()
    lengths = pc.list_value_length(embedding)
    dim = pc.max(lengths).as_py() or 0
    if pc.min(lengths).as_py() != dim:
        raise ValueError("stored vectors differ in dimension: the archive mixes encoders")
    values = embedding.flatten().to_numpy(zero_copy_only=False)
    vectors = np.asarray(values, dtype=np.float32).reshape(-1, dim)
    boundaries = np.flatnonzero(np.append(True, owners[1:] != owners[:-1]))
    models = table.column("model").to_numpy(zero_copy_only=False)
    return (
        [str(x) for x in owners[boundaries]],
        boundaries,
        vectors,
        table.column("seq").to_numpy(),
        [str(m) for m in models[boundaries]],
    )


def passage_models(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How many stored passages each encoder produced."""
    return dict(con.execute("SELECT model, count(*) FROM passages GROUP BY model").fetchall())


def article_texts(
    con: duckdb.DuckDBPyConnection, ids: Sequence[str]
) -> dict[str, tuple[str | None, str, str | None]]:
    """Title, text and language of the given articles."""
    with arrow_view(con, "wanted_ids", pa.table({"article_id": list(ids)})):
        rows = con.execute(
            "SELECT a.article_id, a.title, a.text, a.language FROM articles a JOIN wanted_ids USING (article_id)"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def passage_texts(
    con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """Text of the given (article_id, seq) passages."""
    table = pa.table({"article_id": [k[0] for k in keys], "seq": pa.array([k[1] for k in keys], pa.int32())})
    with arrow_view(con, "wanted_passages", table):
        rows = con.execute(
            "SELECT p.article_id, p.seq, p.text FROM passages p JOIN wanted_passages USING (article_id, seq)"
        ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def replace_matches(
    con: duckdb.DuckDBPyConnection, matches: Sequence[Match]
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Make the matches table agree with a fresh scoring (call inside a transaction).

    Matches an analyst has reviewed (status other than ``new``) are kept whatever the
    new score. Unreviewed matches that no longer qualify are removed with any alert
    not yet delivered. Surviving matches get the new score and evidence.

    Args:
        con: the database.
        matches: every (article, topic) that qualifies now.

    Returns:
        Counts ``added``, ``updated``, ``removed``, and the ``(article_id, topic_id)`` pairs added.
    """
    counts: dict[str, int] = {}
    with arrow_view(con, "fresh", matches_table(matches)):
        stale = (
            "m.status = 'new' AND NOT EXISTS "
            "(SELECT 1 FROM fresh f WHERE f.article_id = m.article_id AND f.topic_id = m.topic_id)"
        )
        # An alert not yet sent anywhere goes with its match; one already sent stays on record.
        unsent = (
            "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.alert_id AND d.status IN ('sent', 'sending')) "
            f"AND EXISTS (SELECT 1 FROM matches m WHERE m.article_id = a.article_id AND m.topic_id = a.topic_id AND {stale})"
        )
        con.execute(
            f"DELETE FROM deliveries WHERE alert_id IN (SELECT a.alert_id FROM alerts a WHERE {unsent})"
        )
        con.execute(f"DELETE FROM alerts a WHERE {unsent}")
        counts["removed"] = changed(con, f"DELETE FROM matches m WHERE {stale}")
        counts["updated"] = changed(
            con,
            """
            UPDATE matches SET score = f.score, threshold = f.threshold,
                best_passage_seq = f.best_passage_seq, best_passage = f.best_passage,
                exemplar = f.exemplar, model = f.model, embedding_score = f.embedding_score,
                keyword_hits = f.keyword_hits
            FROM fresh f WHERE matches.article_id = f.article_id AND matches.topic_id = f.topic_id
            """,
        )
        added = insert_new(
            con,
            "matches",
            ["article_id", "topic_id"],
            "SELECT f.*, 'new' AS status, ? AS matched_at, 'rescore' AS run_id FROM fresh f",
            [now_utc()],
            returning=["article_id", "topic_id"],
        )
    counts["added"] = len(added)
    return counts, [(r[0], r[1]) for r in added]
