"""The ingest flow: poll feeds, fetch, extract, embed, store, match, alert.

Only wiring lives here. Each task wraps plain functions from :mod:`monitor`;
batches of articles are the unit of work, and only I/O tasks retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from monitor import alerts, extract, sources, store
from monitor.config import Settings
from monitor.embed import Embedder, embed_articles
from monitor.fetch import Fetcher, fetch_pages, open_fetcher
from monitor.guard import AddressGuard
from monitor.match import TopicMatcher
from monitor.models import Entry, Feed, FeedPoll, FeedState, FetchStatus, PageFailure, PageFetch, Topic
from monitor.robots import RobotsPolicy
from monitor.schedule import plan_next_poll
from monitor.topics import load_topics


class AllFeedsFailed(RuntimeError):
    """Raised when not one feed could be polled: the run has nothing to show."""


@dataclass
class RunSummary:
    """Counts per stage, as stored in the runs table."""

    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    failed_feeds: list[tuple[str, str]] = field(default_factory=list)


def _fetcher(settings: Settings) -> AbstractAsyncContextManager[Fetcher]:
    return open_fetcher(settings.fetch_limits(), AddressGuard(settings.fetch_allow), settings.user_agent)


def _batches(items: Sequence[Entry], size: int) -> list[Sequence[Entry]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@task(cache_policy=NO_CACHE)
def prepare(
    settings: Settings, feeds: list[Feed], topics: list[Topic]
) -> tuple[str, dict[str, FeedState], set[str]]:
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        states = store.sync_sources(con, feeds)
        store.save_topics(con, topics)
        run_id = store.start_run(con, flow_run.get_id())
        due = store.due_sources(con, datetime.now(UTC))
    return run_id, states, due


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def poll_feeds(settings: Settings, feeds: list[Feed], states: dict[str, FeedState]) -> list[FeedPoll]:
    async def run() -> list[FeedPoll]:
        async with _fetcher(settings) as fetcher:
            return await sources.poll_feeds(fetcher, feeds, states, settings.max_feed_bytes)

    return asyncio.run(run())


@task(cache_policy=NO_CACHE)
def record_polls(
    settings: Settings, run_id: str, polls: list[FeedPoll], states: dict[str, FeedState]
) -> list[Entry]:
    now = datetime.now(UTC)
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
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        store.record_polls(con, run_id, polls, plans)
        return store.pending_entries(con, settings.page_max_attempts)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def download(settings: Settings, entries: Sequence[Entry]) -> tuple[list[PageFetch], list[PageFailure]]:
    async def run() -> tuple[list[PageFetch], list[PageFailure]]:
        async with _fetcher(settings) as fetcher:
            robots = RobotsPolicy(fetcher, settings.user_agent) if settings.obey_robots else None
            return await fetch_pages(fetcher, entries, settings.max_page_bytes, robots)

    return asyncio.run(run())


@task(cache_policy=NO_CACHE)
def process_batch(
    settings: Settings,
    run_id: str,
    pages: list[PageFetch],
    download_failures: list[PageFailure],
    embedder: Embedder,
    matcher: TopicMatcher,
) -> dict[str, int]:
    articles, extract_failures = extract.extract_batch(pages)
    passages = embed_articles(embedder, articles, settings.passage_words, settings.passage_overlap_words)
    matches = matcher.match(articles, passages)
    failures = [*download_failures, *extract_failures]
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        saved = store.save_batch(con, run_id, articles, passages, matches, failures, embedder.name)
    return {
        "pages_fetched": len(pages),
        "pages_failed": len(failures),
        "articles_stored": saved["articles"],
        "passages_stored": saved["passages"],
        "matches_new": saved["matches"],
        "alerts_new": saved["alerts"],
    }


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def deliver_alerts(settings: Settings) -> int:
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        pending = store.pending_alerts(con)
    delivery = alerts.deliver_to_file(pending, settings.alerts_path)
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        store.mark_alerts(con, delivery.delivered, delivery.failed, delivery.channel)
    return len(delivery.delivered)


@task(cache_policy=NO_CACHE)
def finish(settings: Settings, summary: RunSummary, status: str, error: str | None) -> None:
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        store.finish_run(con, summary.run_id, status, summary.counts, error)


@flow(name="ingest", log_prints=True)
def ingest(
    db: str | None = None,
    feeds: str | None = None,
    topics: str | None = None,
    alerts_file: str | None = None,
    fetch_allow: list[str] | None = None,
    poll_all: bool = False,
) -> RunSummary:
    """Run one ingest cycle over every feed in the feed list.

    Args:
        db: DuckDB file (default: settings).
        feeds: feed list YAML (default: settings).
        topics: topic profiles YAML (default: settings).
        alerts_file: JSON-lines alert sink (default: settings).
        fetch_allow: hosts or CIDR ranges exempt from the private-address guard.
        poll_all: poll every feed, not only those whose adaptive schedule says they are due.

    Returns:
        The run's counts per stage.

    Raises:
        AllFeedsFailed: every feed failed to poll (the run is recorded as failed).
    """
    overrides: dict[str, Any] = {
        k: v
        for k, v in dict(
            db=db, feeds=feeds, topics=topics, alerts_file=alerts_file, fetch_allow=fetch_allow
        ).items()
        if v is not None
    }
    settings = Settings(**overrides)
    log = get_run_logger()

    feed_list = sources.load_feeds(settings.feeds)
    topic_list = load_topics(settings.topics)
    run_id, states, due = prepare(settings, feed_list, topic_list)
    summary = RunSummary(run_id)
    if not poll_all:
        waiting = len(feed_list)
        feed_list = [f for f in feed_list if f.source_id in due]
        if waiting - len(feed_list):
            log.info(
                "%d of %d feeds are not due yet (use --all to poll them anyway)",
                waiting - len(feed_list),
                waiting,
            )
    try:
        _run_stages(settings, summary, feed_list, topic_list, states)
    except BaseException as exc:
        # Record why the run stopped (a failed feed list, a held database, Ctrl-C),
        # then let Prefect mark the flow run failed or cancelled.
        finish(settings, summary, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finish(settings, summary, "completed", None)
    c = summary.counts
    log.info(
        "run %s done: %d articles, %d matches, %d alerts delivered",
        run_id, c.get("articles_stored", 0), c.get("matches_new", 0), c.get("alerts_delivered", 0),
    )  # fmt: skip
    return summary


def _run_stages(
    settings: Settings,
    summary: RunSummary,
    feed_list: list[Feed],
    topic_list: list[Topic],
    states: dict[str, FeedState],
) -> None:
    log = get_run_logger()
    counts = summary.counts
    log.info("run %s: polling %d feeds", summary.run_id, len(feed_list))
    polls = poll_feeds(settings, feed_list, states)
    ok = [p for p in polls if p.status is FetchStatus.OK]
    not_modified = [p for p in polls if p.status is FetchStatus.NOT_MODIFIED]
    failed = [p for p in polls if p.status not in (FetchStatus.OK, FetchStatus.NOT_MODIFIED)]
    for poll in failed:
        summary.failed_feeds.append((poll.feed.name, poll.error or poll.status.value))
        log.warning(
            "feed failed: %s <%s>: %s: %s", poll.feed.name, poll.feed.url, poll.status.value, poll.error
        )
    counts.update(
        feeds_total=len(polls),
        feeds_ok=len(ok),
        feeds_not_modified=len(not_modified),
        feeds_failed=len(failed),
        entries_seen=sum(len(p.entries) for p in polls),
    )
    todo = record_polls(settings, summary.run_id, polls, states)
    counts["entries_new"] = len(todo)
    log.info(
        "polled %d feeds: %d ok, %d not modified, %d failed; %d entries, %d new",
        len(polls), len(ok), len(not_modified), len(failed), counts["entries_seen"], len(todo),
    )  # fmt: skip
    if polls and len(failed) == len(polls):
        reasons = "; ".join(f"{name}: {error}" for name, error in summary.failed_feeds)
        raise AllFeedsFailed(f"all {len(polls)} feeds failed: {reasons}")

    if todo:
        embedder = Embedder(settings.model_path, settings.embed_batch_size)
        matcher = TopicMatcher(topic_list, embedder)
        batches = _batches(todo, settings.batch_size)
        for number, batch in enumerate(batches, start=1):
            pages, download_failures = download(settings, batch)
            result = process_batch(settings, summary.run_id, pages, download_failures, embedder, matcher)
            for name, value in result.items():
                counts[name] = counts.get(name, 0) + value
            log.info(
                "batch %d/%d: %d pages, %d failed, %d articles stored, %d new matches",
                number, len(batches), result["pages_fetched"], result["pages_failed"],
                result["articles_stored"], result["matches_new"],
            )  # fmt: skip

    counts["alerts_delivered"] = deliver_alerts(settings)
