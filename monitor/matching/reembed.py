"""Move the stored archive to another encoder: re-embed every passage, in bounded batches.

Each batch is read in one short window, embedded with no database held, and written in
one transaction, so a kill loses at most the batch in flight and a second run carries on
from where the first stopped (it selects the articles whose passages are not yet the
target encoder's). Matches keep the scores of the encoder that produced them until
``monitor rescore`` recomputes them with thresholds fitted for the new encoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import duckdb

from monitor import store
from monitor.matching.embedding import Encoder
from monitor.matching.passages import embed_passages
from monitor.matching.routing import Routing
from monitor.store import passages as stored_passages

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass(frozen=True)
class ReembedResult:
    """What a re-embed did."""

    articles: int
    passages: int
    remaining: int
    seconds: float


def reembed(
    connect: Connect,
    encoders: Encoder | Routing,
    words: int = 180,
    overlap: int = 30,
    batch_articles: int = 256,
    progress: Callable[[str], None] | None = None,
    max_batches: int | None = None,
) -> ReembedResult:
    """Re-embed every article whose passages are missing or come from another encoder.

    Args:
        connect: opens a short-lived read-write connection (the caller holds the writer lease).
        encoders: the encoder to move the archive to, or a routing (each article goes to its language's encoder).
        words: passage length in words.
        overlap: passage overlap in words.
        batch_articles: articles per batch (bounds memory and the work a kill can lose).
        progress: receives a line after every batch.
        max_batches: stop after this many batches (default: until done).

    Returns:
        Articles and passages re-embedded, and articles still to do.
    """
    started = time.monotonic()
    routing = encoders if isinstance(encoders, Routing) else None
    primary = routing.primary if routing else encoders
    assert not isinstance(primary, Routing)
    multilingual = routing.multilingual_name if routing else None
    languages = sorted(routing.primary_languages) if routing else ["en"]
    with connect() as con:
        todo, _ = stored_passages.count_to_reembed(con, primary.name, multilingual, languages)
    done_articles = done_passages = batches = 0
    while max_batches is None or batches < max_batches:
        with connect() as con:
            rows = stored_passages.articles_to_reembed(
                con, primary.name, batch_articles, multilingual, languages
            )
        if not rows:
            break
        passages = []
        for name in dict.fromkeys(r[3] for r in rows):
            encoder = routing.encoder(name) if routing else primary
            passages += embed_passages(
                encoder, [(a, t, x) for a, t, x, n in rows if n == name], words, overlap
            )
        with connect() as con, store.transaction(con):
            stored_passages.replace_passages(con, [r[0] for r in rows], passages)
        batches += 1
        done_articles += len(rows)
        done_passages += len(passages)
        if progress:
            elapsed = time.monotonic() - started
            rate = done_articles / elapsed if elapsed else 0.0
            left = (todo - done_articles) / rate if rate else 0.0
            progress(
                f"re-embedded {done_articles}/{todo} articles ({done_passages} passages) with "
                f"{' / '.join(dict.fromkeys(r[3] for r in rows))}, "
                f"{rate:.1f} articles/s, about {left:.0f} s left"
            )
    with connect() as con:
        remaining, _ = stored_passages.count_to_reembed(con, primary.name, multilingual, languages)
    return ReembedResult(done_articles, done_passages, remaining, round(time.monotonic() - started, 2))
