"""The ingest flow: poll feeds, fetch, extract, embed, store, match, alert.

Only wiring lives here. Each task wraps plain functions from :mod:`monitor`;
batches of articles are the unit of work, and only I/O tasks retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from monitor import alerts, extract, sources, store
from monitor.config import Settings
from monitor.embed import Embedder, embed_articles
from monitor.fetch import fetch_pages, open_fetcher
from monitor.guard import AddressGuard
from monitor.match import TopicMatcher
from monitor.models import Entry, Feed, FeedPoll, FeedState, FetchStatus, Topic
from monitor.topics import load_topics


class AllFeedsFailed(RuntimeError):
    """Raised when not one feed could be polled: the run has nothing to show."""


@dataclass
class RunSummary:
    """Counts per stage, as stored in the runs table."""

    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    failed_feeds: list[tuple[str, str]] = field(default_factory=list)


def _batches(items: Sequence[Entry], size: int) -> list[Sequence[Entry]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@task(cache_policy=NO_CACHE)
def prepare(settings: Settings, feeds: list[Feed], topics: list[Topic]) -> tuple[str, dict[str, FeedState]]:
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        states = store.sync_sources(con, feeds)
        store.save_topics(con, topics)
        run_id = store.start_run(con, flow_run.get_id())
    return run_id, states


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def poll_feeds(settings: Settings, feeds: list[Feed], states: dict[str, FeedState]) -> list[FeedPoll]:
    async def run() -> list[FeedPoll]:
        guard = AddressGuard(settings.fetch_allow)
        async with open_fetcher(settings.fetch_limits(), guard, settings.user_agent) as fetcher:
            return await sources.poll_feeds(fetcher, feeds, states, settings.max_feed_bytes)

    return asyncio.run(run())


@task(cache_policy=NO_CACHE)
def record_polls(settings: Settings, run_id: str, polls: list[FeedPoll]) -> list[Entry]:
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        store.record_polls(con, run_id, polls)
        entries = [e for p in polls for e in p.entries]
        return store.entries_to_fetch(con, entries, settings.page_max_attempts)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def download(settings: Settings, entries: Sequence[Entry]) -> tuple[list, list]:
    async def run() -> tuple[list, list]:
        guard = AddressGuard(settings.fetch_allow)
        async with open_fetcher(settings.fetch_limits(), guard, settings.user_agent) as fetcher:
            return await fetch_pages(fetcher, entries, settings.max_page_bytes)

    return asyncio.run(run())


@task(cache_policy=NO_CACHE)
def process_batch(
    settings: Settings,
    run_id: str,
    pages: list,
    download_failures: list,
    embedder: Embedder,
    matcher: TopicMatcher,
) -> dict[str, int]:
    articles, extract_failures = extract.extract_batch(pages)
    passages = embed_articles(embedder, articles, settings.passage_words, settings.passage_overlap_words)
    matches = matcher.match(passages)
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        counts = store.save_batch(
            con, run_id, articles, passages, matches, [*download_failures, *extract_failures], embedder.name
        )
    counts["pages_failed"] = len(download_failures) + len(extract_failures)
    return counts


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def deliver_alerts(settings: Settings) -> int:
    with store.connect(settings.db, lock_timeout_s=settings.db_lock_timeout_s) as con:
        pending = store.pending_alerts(con)
    delivery = alerts.deliver_to_file(pending, settings.alerts_file)
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
) -> RunSummary:
    """Run one ingest cycle over every feed in the feed list.

    Args:
        db: DuckDB file (default: settings).
        feeds: feed list YAML (default: settings).
        topics: topic profiles YAML (default: settings).
        alerts_file: JSON-lines alert sink (default: settings).
        fetch_allow: hosts or CIDR ranges exempt from the private-address guard.

    Returns:
        The run's counts per stage.

    Raises:
        AllFeedsFailed: every feed failed to poll (the run is recorded as failed).
    """
    overrides = {
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
    run_id, states = prepare(settings, feed_list, topic_list)
    summary = RunSummary(run_id)
    counts = summary.counts
    log.info("run %s: polling %d feeds", run_id, len(feed_list))

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
    todo = record_polls(settings, run_id, polls)
    counts["entries_new"] = len(todo)
    log.info(
        "polled %d feeds: %d ok, %d not modified, %d failed; %d entries, %d new",
        len(polls), len(ok), len(not_modified), len(failed), counts["entries_seen"], len(todo),
    )  # fmt: skip

    if polls and len(failed) == len(polls):
        error = f"all {len(polls)} feeds failed: " + "; ".join(f"{n}: {e}" for n, e in summary.failed_feeds)
        finish(settings, summary, "failed", error)
        raise AllFeedsFailed(error)

    if todo:
        embedder = Embedder(settings.model_path, settings.embed_batch_size)
        matcher = TopicMatcher(topic_list, embedder)
        batches = _batches(todo, settings.batch_size)
        for number, batch in enumerate(batches, start=1):
            pages, download_failures = download(settings, batch)
            result = process_batch(settings, run_id, pages, download_failures, embedder, matcher)
            counts["pages_fetched"] = counts.get("pages_fetched", 0) + len(pages)
            for key, name in (
                ("pages_failed", "pages_failed"),
                ("articles", "articles_stored"),
                ("passages", "passages_stored"),
                ("matches", "matches_new"),
                ("alerts", "alerts_new"),
            ):
                counts[name] = counts.get(name, 0) + result.get(key, 0)
            log.info(
                "batch %d/%d: %d pages, %d failed, %d articles stored, %d new matches",
                number, len(batches), len(pages), result["pages_failed"], result["articles"], result["matches"],
            )  # fmt: skip

    counts["alerts_delivered"] = deliver_alerts(settings)
    finish(settings, summary, "completed", None)
    log.info(
        "run %s done: %d articles, %d matches, %d alerts delivered",
        run_id, counts.get("articles_stored", 0), counts.get("matches_new", 0), counts["alerts_delivered"],
    )  # fmt: skip
    return summary
