"""The ingest pipeline's stage functions: plain typed functions an orchestrator can wrap one by one."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from monitor import store, stories
from monitor.alerts import service as alert_service
from monitor.alerts.delivery import DeliveryReport
from monitor.alerts.queue import queue_story_alerts
from monitor.alerts.routing import ChannelSpec
from monitor.config import Settings
from monitor.ingest.feedlist import FeedList
from monitor.ingest.schedule import plan_next_poll
from monitor.matching.routing import Routing
from monitor.models import (
    Article,
    Entry,
    Feed,
    FeedPoll,
    FeedState,
    Match,
    PageFailure,
    Passage,
    Topic,
)
from monitor.pipeline.analysis import Analysed, analyse
from monitor.pipeline.network import NetworkSession
from monitor.pipeline.records import (
    STORE_ATTEMPTS,
    BatchResult,
    Downloaded,
    RunStart,
    RunSummary,
    logger,
)
from monitor.store.readcopy import Refresh, Snapshot, publish_snapshot, take_snapshot


def _connect(settings: Settings) -> Any:
    return store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s)


# --- stages -------------------------------------------------------------------------------


def start(
    settings: Settings,
    feed_list: FeedList,
    topics: list[Topic],
    lease: store.WriterLease,
    flow_run_id: str | None,
) -> RunStart:
    """Record the feeds (and rejected entries), the topics and a new run; find the feeds that are due."""
    with _connect(settings) as con:
        states = store.sync_sources(con, feed_list.feeds, feed_list.rejected)
        store.save_topics(con, topics)
        run_id = store.start_run(con, lease, flow_run_id)
        due = store.due_sources(con, store.now_utc())
    return RunStart(run_id, states, due)


def poll(
    settings: Settings, feeds: list[Feed], states: dict[str, FeedState], session: NetworkSession
) -> list[FeedPoll]:
    """Fetch and parse the feeds concurrently (network: no database held)."""
    return session.poll(feeds, states)


def record(
    settings: Settings, run_id: str, polls: list[FeedPoll], states: dict[str, FeedState]
) -> list[Entry]:
    """Store each poll's outcome, schedule and sightings; return the run's work (pending entries).

    With feed shards, a worker takes the pending articles whose first sighting is in a feed of
    its own shard, so two live workers do not download the same page (and a dead worker's
    leftovers go to the same shard's next run).
    """
    now = store.now_utc()
    plans = [
        plan_next_poll(
            p,
            states.get(p.feed.source_id),
            now,
            settings.min_poll_interval_s,
            settings.max_poll_interval_s,
            settings.dead_after_failures,
        )
        for p in polls
    ]
    with _connect(settings) as con:
        store.record_polls(con, run_id, polls, plans)
        pending = store.pending_entries(con, settings.page_max_attempts, now)
    shard = settings.feed_shard()
    return [e for e in pending if shard.owns(e.source_id)] if shard.count > 1 else pending


def download(settings: Settings, entries: Sequence[Entry], session: NetworkSession) -> Downloaded:
    """Download a batch of article pages, obeying robots.txt when configured (network only)."""
    started = time.monotonic()
    pages, failures = session.download(entries)
    return Downloaded(pages, failures, time.monotonic() - started)


def process(settings: Settings, run_id: str, batch: Downloaded, routing: Routing) -> BatchResult:
    """Extract, embed and match one downloaded batch, then store it in one transaction.

    Each article is embedded by the encoder its language routes to, and scored by that
    encoder's matcher (:func:`monitor.pipeline.analysis.analyse`); then :func:`save`.

    Returns:
        The batch's counts and stage seconds (see :func:`save`).

    Raises:
        DatabaseBusy: the database stayed held through every attempt.
    """
    return save(settings, run_id, analyse(settings, batch, routing), routing.topics)


def save(settings: Settings, run_id: str, analysed: Analysed, topics: list[Topic]) -> BatchResult:
    """Store an analysed batch in one write window, with alert ledger rows for the topics' channels.

    A write that finds the database held by another process keeps the batch and tries
    again (``STORE_ATTEMPTS`` times, each waiting up to the lock timeout); only then does it
    give up, and the batch's pages, still pending in ``sightings``, are fetched next run.

    Returns:
        The batch's counts (``pages_fetched``, ``pages_failed``, ``articles_stored``,
        ``passages_stored``, ``passages_reused``, ``matches_new``, ``alerts_new``) and stage seconds.

    Raises:
        DatabaseBusy: the database stayed held through every attempt.
    """
    started = time.monotonic()
    routes = alert_service.routes(settings, topics)
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            with _connect(settings) as con:
                saved = store_batch(
                    con,
                    run_id,
                    analysed.articles,
                    analysed.passages,
                    analysed.matches,
                    analysed.failures,
                    routes,
                )
            break
        except store.DatabaseBusy as exc:
            if attempt == STORE_ATTEMPTS:
                raise
            logger.warning(
                "batch kept in memory, writing again (attempt %d of %d): %s", attempt + 1, STORE_ATTEMPTS, exc
            )
    counts = {
        "passages_reused": analysed.passages_reused,
        "pages_fetched": analysed.pages_fetched,
        "pages_failed": len(analysed.failures),
        "articles_stored": saved["articles"],
        "passages_stored": saved["passages"],
        "matches_new": saved["matches"],
        "alerts_new": saved["alerts"],
    }
    return BatchResult(counts, {**analysed.seconds, "store_s": time.monotonic() - started})


def store_batch(
    con: Any,
    run_id: str,
    articles: Sequence[Article],
    passages: Sequence[Passage],
    matches: Sequence[Match],
    failures: Sequence[PageFailure],
    routes: Mapping[str, Sequence[ChannelSpec]] | None = None,
) -> dict[str, int]:
    """Write one batch's articles, stories, passages, matches, alerts and failures atomically.

    A run killed mid-way therefore leaves whole batches or nothing, and the next run
    picks up the articles that are missing. An article whose canonical URL or normalised
    text is already stored becomes an alias of the stored one (its feed sighting still
    counts); every new article joins the story it duplicates or starts its own; alerts
    are one per story and topic, each with a ledger row per channel of its topic (``routes``;
    without routes no ledger rows are written). The decisions are :mod:`monitor.stories` and
    :mod:`monitor.alerts.carriers`; the store only writes their results.

    Returns:
        Counts of rows actually inserted: ``articles``, ``aliases``, ``stories``,
        ``passages``, ``matches``, ``alerts``.
    """
    now = store.now_utc()
    with store.transaction(con):
        stored_ids, stored_by_text = store.stored_duplicates(con, articles)
        fresh, aliases = stories.split_duplicates(articles, stored_ids, stored_by_text)
        signatures = [stories.signature(a.article_id, a.text) for a in fresh]
        known = [
            (stories.Signature(aid, shingles, values), story)
            for aid, shingles, values, story in store.recent_signatures(con, now - stories.STORY_WINDOW)
        ] if fresh else []  # fmt: skip
        story_of = stories.assign(signatures, known)
        counts = {
            "aliases": store.insert_aliases(con, aliases, now),
            "stories": store.insert_stories(con, stories.new_stories(fresh, story_of), now),
        }
        store.insert_signatures(con, [(s.article_id, s.shingles, s.values) for s in signatures], now)
        counts["articles"] = store.insert_articles(con, fresh, run_id, story_of)
        store.clear_failures(
            con, [a.article_id for a in articles] + [a.entry_id for a in articles if a.entry_id]
        )
        kept = {a.article_id for a in fresh}
        counts["passages"] = store.insert_passages(con, [p for p in passages if p.article_id in kept])
        inserted = store.insert_matches(con, [m for m in matches if m.article_id in kept], run_id, now)
        counts["matches"] = len(inserted)
        counts["alerts"] = queue_story_alerts(con, inserted, now, routes or {}) if inserted else 0
        store.record_failures(con, failures, now)
    return counts


def deliver(settings: Settings, topics: list[Topic]) -> DeliveryReport:
    """Deliver what is due on every channel (the same code as ``monitor alerts deliver``)."""
    return alert_service.deliver_due(settings, topics)


def finish(settings: Settings, summary: RunSummary, status: str, error: str | None) -> None:
    """Record a run's outcome, counts and stage durations."""
    with _connect(settings) as con:
        store.finish_run(con, summary.run_id, status, summary.counts, error, summary.seconds)


def snapshot(settings: Settings, summary: RunSummary) -> Snapshot | None:
    """Checkpoint the live database and copy it for the read copy (under the writer lease; seconds per GB)."""
    if not settings.read_copy or settings.store != "duckdb" or str(settings.db) == ":memory:":
        return None
    return take_snapshot(settings.db, settings.db_lock_timeout_s)


def publish(settings: Settings, summary: RunSummary, taken: Snapshot | None) -> Refresh | None:
    """Index the snapshot and publish it as the analysts' read copy (no lease needed); record the time it took."""
    if taken is None:
        return None
    refresh = publish_snapshot(taken, fts=settings.fts_index)
    with (
        store.writer_lease(
            settings.store_target, "recording a read-copy refresh", settings.db_lock_timeout_s
        ),
        _connect(settings) as con,
    ):
        store.record_publish(con, summary.run_id, refresh.seconds)
    return refresh


def report_markdown(settings: Settings, summary: RunSummary) -> str:
    """The run's new matches per topic, with links, as Markdown."""
    from monitor.alerts.messages import run_summary_markdown

    with store.connect(
        settings.store_target, read_only=True, lock_timeout_s=settings.db_lock_timeout_s
    ) as con:
        rows = store.run_matches(con, summary.run_id)
    return run_summary_markdown(summary.run_id, summary.counts, rows)
