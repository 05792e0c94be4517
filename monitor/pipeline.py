"""The ingest pipeline: its stage functions and its policy, with no orchestrator in sight.

One run: load the feed list and topics, take the writer lease, record the run, poll the
feeds that are due, record what they listed, then fetch → extract → embed → match →
store in batches, deliver alerts, and record the run's counts.

:func:`run_ingest` holds that policy (what runs in which order, batch by batch, what
ends a run). The stages it calls are plain functions, passed in as :class:`Stages`, so
the Prefect flow (``flows/ingest.py``) wraps each one in a task and hands them over,
while tests, benchmarks and the CLI can call the same code directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from monitor import store, stories
from monitor.alerts import service as alert_service
from monitor.alerts.delivery import DeliveryReport
from monitor.alerts.queue import queue_story_alerts
from monitor.alerts.routing import ChannelSpec
from monitor.config import Settings
from monitor.ingest.extraction import extract_batch
from monitor.ingest.feedlist import FeedList, load_feeds
from monitor.ingest.guard import AddressGuard
from monitor.ingest.http import Fetcher, open_fetcher
from monitor.ingest.pages import fetch_pages
from monitor.ingest.polling import poll_feeds
from monitor.ingest.robots import RobotsPolicy
from monitor.ingest.schedule import plan_next_poll
from monitor.matching.embedding import Encoder, load_encoder
from monitor.matching.passages import embed_articles
from monitor.matching.scoring import TopicMatcher
from monitor.matching.topics import load_topics
from monitor.models import (
    Article,
    Entry,
    Feed,
    FeedPoll,
    FeedState,
    FetchStatus,
    Match,
    PageFailure,
    PageFetch,
    Passage,
    Topic,
)

logger = logging.getLogger(__name__)
Log = logging.Logger | logging.LoggerAdapter[Any]

# Counts every run records, stage by stage (columns of the runs table).
RUN_COUNTERS = (
    "feeds_total", "feeds_ok", "feeds_not_modified", "feeds_failed", "entries_seen", "entries_new",
    "pages_fetched", "pages_failed", "articles_stored", "passages_stored", "matches_new",
    "alerts_new", "alerts_delivered",
)  # fmt: skip


class AllFeedsFailed(RuntimeError):
    """Raised when not one feed could be polled: the run has nothing to show."""


@dataclass
class RunSummary:
    """What a run did: counts per stage (as stored in ``runs``) and the feeds that failed."""

    run_id: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUN_COUNTERS, 0))
    failed_feeds: list[tuple[str, str]] = field(default_factory=list)  # (feed name, reason)
    rejected_feeds: list[tuple[str, str]] = field(default_factory=list)  # feed-list entries not polled
    not_due: int = 0


@dataclass(frozen=True)
class RunStart:
    """A recorded run's id, the stored state of every feed, and the feeds that are due."""

    run_id: str
    states: dict[str, FeedState]
    due: set[str]


@dataclass(frozen=True)
class Downloaded:
    """One batch of article pages: those that downloaded, and those that failed."""

    pages: list[PageFetch]
    failures: list[PageFailure]


def _connect(settings: Settings) -> Any:
    return store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s)


def _fetcher(settings: Settings) -> AbstractAsyncContextManager[Fetcher]:
    return open_fetcher(settings.fetch_limits(), AddressGuard(settings.fetch_allow), settings.user_agent)


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


def poll(settings: Settings, feeds: list[Feed], states: dict[str, FeedState]) -> list[FeedPoll]:
    """Fetch and parse the feeds concurrently (network: no database held)."""

    async def run() -> list[FeedPoll]:
        async with _fetcher(settings) as fetcher:
            return await poll_feeds(fetcher, feeds, states, settings.max_feed_bytes)

    return asyncio.run(run())


def record(
    settings: Settings, run_id: str, polls: list[FeedPoll], states: dict[str, FeedState]
) -> list[Entry]:
    """Store each poll's outcome, schedule and sightings; return the run's work (pending entries)."""
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
        return store.pending_entries(con, settings.page_max_attempts, now)


def download(settings: Settings, entries: Sequence[Entry]) -> Downloaded:
    """Download a batch of article pages, obeying robots.txt when configured (network only)."""

    async def run() -> Downloaded:
        async with _fetcher(settings) as fetcher:
            robots = RobotsPolicy(fetcher, settings.user_agent) if settings.obey_robots else None
            pages, failures = await fetch_pages(fetcher, entries, settings.max_page_bytes, robots)
        return Downloaded(pages, failures)

    return asyncio.run(run())


def process(
    settings: Settings, run_id: str, batch: Downloaded, encoder: Encoder, matcher: TopicMatcher
) -> dict[str, int]:
    """Extract, embed and match one downloaded batch, then store it in one transaction.

    Returns:
        The batch's counts (``pages_fetched``, ``pages_failed``, ``articles_stored``,
        ``passages_stored``, ``matches_new``, ``alerts_new``).
    """
    articles, extract_failures = extract_batch(batch.pages)
    passages = embed_articles(encoder, articles, settings.passage_words, settings.passage_overlap_words)
    matches = matcher.match(articles, passages)
    failures = [*batch.failures, *extract_failures]
    routes = alert_service.routes(settings, matcher.topics)
    with _connect(settings) as con:
        saved = store_batch(con, run_id, articles, passages, matches, failures, routes)
    return {
        "pages_fetched": len(batch.pages),
        "pages_failed": len(failures),
        "articles_stored": saved["articles"],
        "passages_stored": saved["passages"],
        "matches_new": saved["matches"],
        "alerts_new": saved["alerts"],
    }


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
    """Record a run's outcome and counts."""
    with _connect(settings) as con:
        store.finish_run(con, summary.run_id, status, summary.counts, error)


def report_markdown(settings: Settings, summary: RunSummary) -> str:
    """The run's new matches per topic, with links, as Markdown."""
    from monitor.alerts.messages import run_summary_markdown

    with store.connect(settings.db, read_only=True, lock_timeout_s=settings.db_lock_timeout_s) as con:
        rows = store.run_matches(con, summary.run_id)
    return run_summary_markdown(summary.run_id, summary.counts, rows)


@dataclass(frozen=True)
class Stages:
    """The stage functions :func:`run_ingest` calls; an orchestrator passes wrapped versions."""

    start: Callable[[Settings, FeedList, list[Topic], store.WriterLease, str | None], RunStart] = start
    poll: Callable[[Settings, list[Feed], dict[str, FeedState]], list[FeedPoll]] = poll
    record: Callable[[Settings, str, list[FeedPoll], dict[str, FeedState]], list[Entry]] = record
    download: Callable[[Settings, Sequence[Entry]], Downloaded] = download
    process: Callable[[Settings, str, Downloaded, Encoder, TopicMatcher], dict[str, int]] = process
    deliver: Callable[[Settings, list[Topic]], DeliveryReport] = deliver
    finish: Callable[[Settings, RunSummary, str, str | None], None] = finish


# --- policy -------------------------------------------------------------------------------


def batches(entries: Sequence[Entry], size: int) -> list[Sequence[Entry]]:
    """Split the run's work into batches of ``size`` entries (the unit of fetch/extract/embed/store)."""
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def tally_polls(summary: RunSummary, polls: Sequence[FeedPoll], log: Log) -> None:
    """Count a run's polls and name each failed feed.

    Raises:
        AllFeedsFailed: every polled feed failed.
    """
    counts = summary.counts
    ok = [p for p in polls if p.status is FetchStatus.OK]
    not_modified = [p for p in polls if p.status is FetchStatus.NOT_MODIFIED]
    failed = [p for p in polls if p.status not in (FetchStatus.OK, FetchStatus.NOT_MODIFIED)]
    for p in failed:
        summary.failed_feeds.append((p.feed.name, p.error or p.status.value))
        log.warning("feed failed: %s <%s>: %s: %s", p.feed.name, p.feed.url, p.status.value, p.error)
    counts.update(
        feeds_total=len(polls),
        feeds_ok=len(ok),
        feeds_not_modified=len(not_modified),
        feeds_failed=len(failed),
        entries_seen=sum(len(p.entries) for p in polls),
    )
    if polls and len(failed) == len(polls):
        reasons = "; ".join(f"{name}: {error}" for name, error in summary.failed_feeds)
        raise AllFeedsFailed(f"all {len(polls)} feeds failed: {reasons}")


def run_ingest(
    settings: Settings,
    *,
    poll_all: bool = False,
    flow_run_id: str | None = None,
    stages: Stages | None = None,
    log: Log = logger,
    purpose: str = "monitor ingest",
) -> RunSummary:
    """Run one ingest cycle over the feed list.

    Args:
        settings: the configuration.
        poll_all: poll every feed, not only those whose adaptive schedule says they are due.
        flow_run_id: the orchestrator's id of this run, recorded with it.
        stages: the stage functions to call (default: the plain ones in this module).
        log: where progress goes (the flow passes Prefect's run logger).
        purpose: how the writer lease names this writer to one that has to wait.

    Returns:
        The run's counts per stage.

    Raises:
        FeedListError: the feed list is missing or malformed (one bad entry is not).
        TopicConfigError: topics.yaml is missing or invalid.
        WriterBusy: another monitor process kept writing the database past the lock timeout.
        AllFeedsFailed: every feed failed (the run is recorded as failed).
    """
    stages = stages or Stages()
    feed_list = load_feeds(settings.feeds)
    topics = load_topics(settings.topics)
    with store.writer_lease(settings.db, purpose, settings.db_lock_timeout_s, on_wait=log.info) as lease:
        begun = stages.start(settings, feed_list, topics, lease, flow_run_id)
        summary = RunSummary(begun.run_id)
        for rejected in feed_list.rejected:
            summary.rejected_feeds.append((rejected.name, rejected.error))
            log.warning("feed list entry rejected: %s", rejected.error)
        feeds = list(feed_list.feeds)
        if not poll_all:
            summary.not_due = len(feeds) - len([f for f in feeds if f.source_id in begun.due])
            feeds = [f for f in feeds if f.source_id in begun.due]
            if summary.not_due:
                log.info(
                    "%d of %d feeds are not due yet (use --all to poll them anyway)",
                    summary.not_due, len(feed_list.feeds),
                )  # fmt: skip
        try:
            _run_stages(settings, stages, summary, feeds, topics, begun.states, log)
        except BaseException as exc:
            # Record why the run stopped (a failed feed list, a held database, Ctrl-C),
            # then let the caller (or the orchestrator) see the exception.
            stages.finish(settings, summary, "failed", f"{type(exc).__name__}: {exc}")
            raise
        stages.finish(settings, summary, "completed", None)
    c = summary.counts
    log.info(
        "run %s done: %d articles, %d matches, %d alerts delivered",
        summary.run_id, c["articles_stored"], c["matches_new"], c["alerts_delivered"],
    )  # fmt: skip
    return summary


def _run_stages(
    settings: Settings,
    stages: Stages,
    summary: RunSummary,
    feeds: list[Feed],
    topics: list[Topic],
    states: dict[str, FeedState],
    log: Log,
) -> None:
    counts = summary.counts
    log.info("run %s: polling %d feeds", summary.run_id, len(feeds))
    polls = stages.poll(settings, feeds, states)
    todo = stages.record(settings, summary.run_id, polls, states)
    counts["entries_new"] = len(todo)
    tally_polls(summary, polls, log)
    log.info(
        "polled %d feeds: %d ok, %d not modified, %d failed; %d entries, %d new",
        len(polls), counts["feeds_ok"], counts["feeds_not_modified"], counts["feeds_failed"],
        counts["entries_seen"], len(todo),
    )  # fmt: skip
    if todo:
        encoder = load_encoder(settings.embedder, settings.model_path, settings.embed_batch_size)
        matcher = TopicMatcher(topics, encoder)
        work = batches(todo, settings.batch_size)
        for number, batch in enumerate(work, start=1):
            downloaded = stages.download(settings, batch)
            result = stages.process(settings, summary.run_id, downloaded, encoder, matcher)
            for name, value in result.items():
                counts[name] += value
            log.info(
                "batch %d/%d: %d pages, %d failed, %d articles stored, %d new matches",
                number, len(work), result["pages_fetched"], result["pages_failed"],
                result["articles_stored"], result["matches_new"],
            )  # fmt: skip
    delivered = stages.deliver(settings, topics)
    counts["alerts_delivered"] = delivered.sent
    for outcome in delivered.channels.values():
        if outcome.error:
            log.warning(
                "alert channel %s: %s (%d waiting)",
                outcome.name,
                outcome.error,
                outcome.waiting + outcome.failed,
            )
