"""The ingest run's policy: stage order, batches, counts, timings, and what ends a run."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from monitor import store
from monitor.alerts.delivery import DeliveryReport
from monitor.config import Settings
from monitor.ingest.feedlist import FeedList, load_feeds
from monitor.matching.routing import Routing, load_routing
from monitor.matching.topics import load_topics
from monitor.models import (
    Entry,
    Feed,
    FeedPoll,
    FeedState,
    FetchStatus,
    Topic,
)
from monitor.pipeline.analysis import (
    Cluster,
    Extracted,
    embed_on_worker,
    extract_on_worker,
    settings_for_workers,
    stored_vectors_for,
)
from monitor.pipeline.memory import return_freed_memory
from monitor.pipeline.network import NetworkSession
from monitor.pipeline.records import (
    AllFeedsFailed,
    BatchResult,
    Downloaded,
    Log,
    RunStart,
    RunSummary,
    logger,
)
from monitor.pipeline.stages import (
    deliver,
    download,
    finish,
    poll,
    process,
    publish,
    record,
    save,
    snapshot,
    start,
)
from monitor.store.readcopy import Refresh, Snapshot


@dataclass(frozen=True)
class Stages:
    """The stage functions :func:`run_ingest` calls; an orchestrator passes wrapped versions."""

    start: Callable[[Settings, FeedList, list[Topic], store.WriterLease, str | None], RunStart] = start
    poll: Callable[[Settings, list[Feed], dict[str, FeedState], NetworkSession], list[FeedPoll]] = poll
    record: Callable[[Settings, str, list[FeedPoll], dict[str, FeedState]], list[Entry]] = record
    download: Callable[[Settings, Sequence[Entry], NetworkSession], Downloaded] = download
    process: Callable[[Settings, str, Downloaded, Routing], BatchResult] = process
    deliver: Callable[[Settings, list[Topic]], DeliveryReport] = deliver
    finish: Callable[[Settings, RunSummary, str, str | None], None] = finish
    snapshot: Callable[[Settings, RunSummary], Snapshot | None] = snapshot
    publish: Callable[[Settings, RunSummary, Snapshot | None], Refresh | None] = publish
    # How a download is started in the background while the previous batch is processed:
    # ``submit(download, settings, entries, session)`` returns something with ``.result()``.
    # None: a thread of the pipeline's own. Prefect passes its task runner's submit.
    submit: Callable[..., Any] | None = None
    # With a cluster, a batch is not ``process``ed here: ``extract`` and ``embed`` go to the
    # cluster (see monitor.pipeline.analysis) and ``save`` stores what comes back.
    cluster: Cluster | None = None
    extract: Callable[[Settings, Downloaded], Extracted] = extract_on_worker
    embed: Callable[..., Any] = embed_on_worker
    save: Callable[[Settings, str, Any, list[Topic]], BatchResult] = save


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
    with store.writer_lease(
        settings.store_target, purpose, settings.db_lock_timeout_s, on_wait=log.info
    ) as lease:
        begun = stages.start(settings, feed_list, topics, lease, flow_run_id)
        summary = RunSummary(begun.run_id)
        for rejected in feed_list.rejected:
            summary.rejected_feeds.append((rejected.name, rejected.error))
            log.warning("feed list entry rejected: %s", rejected.error)
        feeds = list(feed_list.feeds)
        shard = settings.feed_shard()
        if shard.count > 1:
            feeds = shard.select(feeds)
            log.info("shard %s: %d of %d feeds", shard, len(feeds), len(feed_list.feeds))
        if not poll_all:
            summary.not_due = len(feeds) - len([f for f in feeds if f.source_id in begun.due])
            feeds = [f for f in feeds if f.source_id in begun.due]
            if summary.not_due:
                log.info(
                    "%d of %d feeds are not due yet (use --all to poll them anyway)",
                    summary.not_due, summary.not_due + len(feeds),
                )  # fmt: skip
        started = time.monotonic()
        try:
            _run_stages(settings, stages, summary, feeds, topics, begun.states, log)
        except BaseException as exc:
            # Record why the run stopped (a failed feed list, a held database, Ctrl-C),
            # then let the caller (or the orchestrator) see the exception.
            summary.seconds["total_s"] = time.monotonic() - started
            stages.finish(settings, summary, "failed", f"{type(exc).__name__}: {exc}")
            raise
        summary.seconds["total_s"] = time.monotonic() - started
        stages.finish(settings, summary, "completed", None)
        taken = stages.snapshot(settings, summary)
    # The full-text index is built after the lease is released: other writers need not wait for it.
    refresh = stages.publish(settings, summary, taken)
    if refresh is not None:
        summary.seconds["publish_s"] = refresh.seconds
        log.info(
            "read copy %s refreshed in %.1f s (%d articles; %.1f s under the writer lease, full-text index %.1f s)",
            refresh.path, refresh.seconds, refresh.articles, refresh.checkpoint_s + refresh.copy_s, refresh.fts_s,
        )  # fmt: skip
    c, t = summary.counts, summary.seconds
    log.info(
        "run %s done: %d articles, %d matches, %d alerts delivered; seconds: poll %.1f, fetch %.1f, extract %.1f, "
        "embed %.1f, match %.1f, store %.1f, deliver %.1f, publish %.1f, total %.1f",
        summary.run_id, c["articles_stored"], c["matches_new"], c["alerts_delivered"], t["poll_s"], t["fetch_s"],
        t["extract_s"], t["embed_s"], t["match_s"], t["store_s"], t["deliver_s"], t["publish_s"], t["total_s"],
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
    with NetworkSession(settings) as session, ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
        submit = stages.submit or pool.submit
        _poll_and_process(settings, stages, summary, feeds, topics, states, log, session, submit)
    t0 = time.monotonic()
    delivered = stages.deliver(settings, topics)
    summary.add(seconds={"deliver_s": time.monotonic() - t0})
    summary.counts["alerts_delivered"] = delivered.sent
    for outcome in delivered.channels.values():
        if outcome.error:
            log.warning(
                "alert channel %s: %s (%d waiting)",
                outcome.name,
                outcome.error,
                outcome.waiting + outcome.failed,
            )


def _poll_and_process(
    settings: Settings,
    stages: Stages,
    summary: RunSummary,
    feeds: list[Feed],
    topics: list[Topic],
    states: dict[str, FeedState],
    log: Log,
    session: NetworkSession,
    submit: Callable[..., Any],
) -> None:
    counts, clock = summary.counts, time.monotonic
    log.info("run %s: polling %d feeds", summary.run_id, len(feeds))
    t0 = clock()
    polls = stages.poll(settings, feeds, states, session)
    t1 = clock()
    todo = stages.record(settings, summary.run_id, polls, states)
    summary.add(seconds={"poll_s": t1 - t0, "store_s": clock() - t1})
    counts["entries_new"] = len(todo)
    tally_polls(summary, polls, log)
    log.info(
        "polled %d feeds: %d ok, %d not modified, %d failed; %d entries, %d new",
        len(polls), counts["feeds_ok"], counts["feeds_not_modified"], counts["feeds_failed"],
        counts["entries_seen"], len(todo),
    )  # fmt: skip
    if todo:
        routing = load_routing(topics, **settings.routing_options())
        if [t.threshold for t in routing.topics] != [t.threshold for t in topics]:
            # The topics table records the thresholds in force: those fitted for the primary encoder.
            with store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s) as con:
                store.save_topics(con, routing.topics)
        work = batches(todo, settings.batch_size)
        downloads = _Downloads(settings, stages, summary, work, session, submit)
        if stages.cluster is not None:
            _process_on_cluster(settings, stages, stages.cluster, summary, downloads, topics, routing, log)
            return
        for number in range(1, len(work) + 1):
            downloaded = downloads.next()
            result = stages.process(settings, summary.run_id, downloaded, routing)
            _tally_batch(summary, result, number, len(work), log)
            del downloaded, result
            return_freed_memory()


class _Downloads:
    """The run's batches, downloaded in order, each while the previous one is being processed."""

    def __init__(
        self,
        settings: Settings,
        stages: Stages,
        summary: RunSummary,
        work: list[Sequence[Entry]],
        session: NetworkSession,
        submit: Callable[..., Any],
    ) -> None:
        self.settings, self.stages, self.summary = settings, stages, summary
        self.work, self.session, self.submit = work, session, submit
        self.taken = 0
        self.ahead = submit(stages.download, settings, work[0], session)

    @property
    def left(self) -> int:
        """Batches not yet taken."""
        return len(self.work) - self.taken

    def next(self) -> Downloaded:
        """The next batch's pages (waiting for its download), starting the download of the one after."""
        t0 = time.monotonic()
        downloaded: Downloaded = self.ahead.result()
        self.summary.add(seconds={"fetch_s": downloaded.seconds, "fetch_wait_s": time.monotonic() - t0})
        self.taken += 1
        if self.taken < len(self.work):
            self.ahead = self.submit(self.stages.download, self.settings, self.work[self.taken], self.session)
        return downloaded


def _tally_batch(summary: RunSummary, result: BatchResult, number: int, total: int, log: Log) -> None:
    summary.add(result.counts, result.seconds)
    log.info(
        "batch %d/%d: %d pages, %d failed, %d articles stored, %d new matches",
        number, total, result.counts["pages_fetched"], result.counts["pages_failed"],
        result.counts["articles_stored"], result.counts["matches_new"],
    )  # fmt: skip


def _process_on_cluster(
    settings: Settings,
    stages: Stages,
    cluster: Cluster,
    summary: RunSummary,
    downloads: _Downloads,
    topics: list[Topic],
    routing: Routing,
    log: Log,
) -> None:
    """Keep up to ``cluster.capacity`` batches on the cluster; store each as it comes back, in order.

    A batch is extracted there, its stored vectors are looked up here, it is embedded and
    matched there, and it is stored here: cluster workers never open the store. Batches are
    stored in the order they were downloaded, each in its own write window, as in one process.
    """
    total, stored = len(downloads.work), 0
    shipped = settings_for_workers(settings)
    extracting: deque[Any] = deque()
    embedding: deque[Any] = deque()
    capacity = max(cluster.capacity, 1)
    while downloads.left or extracting or embedding:
        while downloads.left and len(extracting) + len(embedding) < capacity:
            extracting.append(cluster.submit(stages.extract, shipped, downloads.next()))
        if extracting:
            extracted: Extracted = extracting.popleft().result()
            known = stored_vectors_for(settings, extracted, routing)
            embedding.append(cluster.submit(stages.embed, shipped, extracted, topics, known))
            del extracted, known
        full = len(extracting) + len(embedding) >= capacity
        if embedding and (full or not (downloads.left or extracting)):
            stored += 1
            result = stages.save(settings, summary.run_id, embedding.popleft().result(), routing.topics)
            _tally_batch(summary, result, stored, total, log)
            del result
            return_freed_memory()
