"""Recompute every match from stored passage embeddings, without re-embedding.

Run after editing topics.yaml: new exemplars, negatives, keywords or thresholds
take effect on the whole archive in seconds. Scores come from the same function as
at ingest (:meth:`TopicMatcher.score_articles`), so an unchanged topics.yaml
reproduces the stored matches exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

from monitor import store
from monitor.alerts.queue import queue_story_alerts
from monitor.alerts.routing import ChannelSpec
from monitor.config import Settings
from monitor.matching.keywords import scoring_text
from monitor.matching.routing import Routing, load_routing
from monitor.matching.scoring import ArticleText, Flagged, TopicMatcher, TopicScores
from monitor.models import Match
from monitor.store import rescoring


class EncoderMismatch(RuntimeError):
    """Raised when stored vectors come from another encoder than the configured one."""


@dataclass(frozen=True)
class RescorePlan:
    """What a rescore would write: every (article, topic) that qualifies now."""

    articles: int
    passages: int
    matches: list[Match]


Matchers = TopicMatcher | Routing


def matcher_names(matchers: Matchers) -> list[str]:
    """The encoders a matcher or routing scores (the primary one first)."""
    return matchers.names if isinstance(matchers, Routing) else [matchers.model]


def matcher_for(matchers: Matchers, model: str) -> TopicMatcher:
    """The matcher for one encoder's vectors."""
    return matchers.matcher(model) if isinstance(matchers, Routing) else matchers


def check_encoder(con: duckdb.DuckDBPyConnection, model: str | Sequence[str]) -> None:
    """Refuse to score vectors from an encoder other than the configured ones.

    Raises:
        EncoderMismatch: some stored passages were embedded by another encoder.
    """
    allowed = [model] if isinstance(model, str) else list(model)
    others = {m: n for m, n in rescoring.passage_models(con).items() if m not in allowed}
    if others:
        found = ", ".join(f"{m} ({n} passages)" for m, n in sorted(others.items()))
        wanted = " and ".join(allowed)
        raise EncoderMismatch(
            f"stored passages were embedded with {found}, but the configured encoder is {wanted}; "
            f"run `monitor reembed` to move the archive to {wanted}, or set MONITOR_EMBEDDER to the stored one"
        )


def iter_scores(
    con: duckdb.DuckDBPyConnection,
    matchers: Matchers,
    chunk_articles: int = 20_000,
    article_ids: Sequence[str] | None = None,
) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, list[TopicScores], str]]:
    """Score stored articles chunk by chunk with the one scoring function.

    Each chunk holds one encoder's vectors and is scored by that encoder's matcher.

    Yields:
        ``(article_ids, starts, seqs, scores per topic, encoder name)`` per chunk.

    Raises:
        EncoderMismatch: the stored passages come from another encoder.
    """
    check_encoder(con, matcher_names(matchers))
    for ids, starts, vectors, seqs, models in rescoring.iter_passage_vectors(
        con, chunk_articles, article_ids
    ):
        texts = rescoring.article_texts(con, ids)
        inputs = [ArticleText(scoring_text(texts[a][0], texts[a][1]), texts[a][2]) for a in ids]
        yield (
            ids,
            starts,
            seqs,
            matcher_for(matchers, models[0]).score_articles(vectors, starts, inputs),
            models[0],
        )


def score_archive(
    con: duckdb.DuckDBPyConnection,
    matchers: Matchers,
    chunk_articles: int = 20_000,
    progress: Callable[[str], None] | None = None,
) -> RescorePlan:
    """Score every stored article against the matcher's topics, chunk by chunk.

    Args:
        con: a connection.
        matchers: topics with exemplars embedded by the encoder(s) of the stored passages.
        chunk_articles: articles scored per chunk (bounds memory).
        progress: receives a line per chunk.

    Returns:
        Every flagged (article, topic) as a match, with evidence.

    Raises:
        EncoderMismatch: the stored passages come from another encoder.
    """
    flagged: list[tuple[Flagged, str]] = []
    articles = passages = 0
    for ids, starts, seqs, table, chunk_model in iter_scores(con, matchers, chunk_articles):
        articles += len(ids)
        passages += len(seqs)
        for scores in table:
            for i in np.flatnonzero(scores.flagged):
                seq = int(seqs[starts[i] + scores.best_seq[i]])
                flagged.append((scores.flag(int(i), ids[i], seq), chunk_model))
        if progress:
            progress(f"rescored {articles} articles ({passages} passages), {len(flagged)} matches so far")
    text_of = rescoring.passage_texts(con, sorted({(f.article_id, f.passage_seq) for f, _ in flagged}))
    matches = [
        matcher_for(matchers, model).make_match(f, text_of[(f.article_id, f.passage_seq)])
        for f, model in flagged
    ]
    return RescorePlan(articles, passages, matches)


def rescore(
    con: duckdb.DuckDBPyConnection,
    matchers: Matchers,
    alert: bool = False,
    chunk_articles: int = 20_000,
    progress: Callable[[str], None] | None = None,
    routes: Mapping[str, Sequence[ChannelSpec]] | None = None,
) -> dict[str, object]:
    """Score every stored article against the matcher's topics and replace the matches.

    Args:
        con: a read-write connection (the caller holds the writer lease).
        matchers: a matcher, or a routing with one matcher per encoder of the stored passages.
        alert: queue alerts for articles that newly match.
        chunk_articles: articles scored per chunk (bounds memory).
        progress: receives a line per chunk.
        routes: each topic's alert channels, for the ledger rows of new alerts (without: no ledger rows).

    Returns:
        ``articles``, ``passages``, ``matches``, ``added``, ``updated``, ``removed``,
        ``alerts`` and ``seconds``.

    Raises:
        EncoderMismatch: the stored passages come from another encoder.
    """
    started = time.monotonic()
    store.save_topics(con, matchers.topics)
    plan = score_archive(con, matchers, chunk_articles, progress)
    with store.transaction(con):
        counts, added = rescoring.replace_matches(con, plan.matches)
        counts["alerts"] = (
            queue_story_alerts(con, added, store.now_utc(), routes or {}) if alert and added else 0
        )
    return {
        "articles": plan.articles,
        "passages": plan.passages,
        "matches": len(plan.matches),
        **counts,
        "seconds": round(time.monotonic() - started, 2),
    }


def rescore_store(
    settings: Settings, alert: bool = False, progress: Callable[[str], None] | None = None
) -> dict[str, object]:
    """Rescore the configured store with the configured topics and encoder, holding the writer lease.

    Raises:
        EncoderMismatch: the stored passages come from another encoder.
        WriterBusy: another writer held the database past the lock timeout.
        TopicConfigError: topics.yaml is missing or invalid.
    """
    from monitor.alerts.service import routes
    from monitor.matching.topics import for_encoder, load_topics

    routing = load_routing(load_topics(settings.topics), strict=False, **settings.routing_options())
    with (
        store.writer_lease(settings.store_target, "rescore", settings.db_lock_timeout_s, on_wait=progress),
        store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s) as con,
    ):
        check_encoder(con, routing.names)  # the stored vectors first: thresholds mean nothing across encoders
        routing.strict = True
        for name in {m for m in rescoring.passage_models(con)}:
            for_encoder(routing.topics_in_force, name)  # raises TopicConfigError for a missing threshold
        return rescore(con, routing, alert=alert, progress=progress, routes=routes(settings, routing.topics))
