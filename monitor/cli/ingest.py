"""``monitor run`` and ``monitor demo``: one ingest cycle, over your feeds or the bundled sample site."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from monitor.cli.common import (
    DEMO_DB,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_db,
    add_topics,
    print_table,
    settings_from,
)
from monitor.cli.flow_runner import FlowFailed, run_ingest_flow
from monitor.config import Settings
from monitor.pipeline import RunSummary

DEMO_PORT = 8765
FLAGGED_SQL = """
SELECT m.topic_id AS topic, round(m.score, 3) AS score, a.title, coalesce(a.site_name, '') AS outlet
FROM matches m JOIN articles a USING (article_id)
ORDER BY m.topic_id, m.score DESC
"""


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``run`` and ``demo``."""
    run = sub.add_parser(
        "run",
        help="run one ingest cycle over the feeds in the feed list",
        description="Polls the feeds that are due, fetches and extracts new articles, embeds and stores "
        "them, flags matches and writes alerts. Exit 1 if the run failed (every feed failed, or another "
        "writer held the database past MONITOR_DB_LOCK_TIMEOUT_S), 2 if the feed list or topics are invalid.",
    )
    _pipeline_options(run, settings, db_default=settings.db)
    run.add_argument(
        "--feeds", type=Path, default=settings.feeds, help="feed list YAML (default: %(default)s)"
    )
    run.add_argument(
        "--all", action="store_true", dest="poll_all",
        help="poll every feed now, not only those whose adaptive schedule says they are due",
    )  # fmt: skip
    run.add_argument(
        "--shard", metavar="K/N", default=settings.shard,
        help="poll only shard K of N of the feed list, by a stable hash of each feed's URL, so that "
        "N workers never poll the same feed (default: MONITOR_SHARD, else every feed)",
    )  # fmt: skip
    run.set_defaults(handler=cmd_run)

    demo = sub.add_parser(
        "demo", help="run the pipeline against a bundled sample news site served on 127.0.0.1"
    )
    _pipeline_options(demo, settings, db_default=DEMO_DB)
    demo.add_argument(
        "--port", type=int, default=DEMO_PORT, help="port for the sample site (default: %(default)s)"
    )
    demo.set_defaults(handler=cmd_demo)


def _pipeline_options(p: argparse.ArgumentParser, settings: Settings, db_default: Path) -> None:
    add_db(p, db_default)
    add_topics(p, settings.topics)
    p.add_argument(
        "--alerts-file", type=Path, default=None,
        help="JSON-lines alert sink (default: <db name>.alerts.jsonl beside the database)",
    )  # fmt: skip


def _run(args: argparse.Namespace, feeds: Path, allow: list[str] | None, poll_all: bool) -> int:
    from monitor.ingest.feedlist import load_feeds
    from monitor.ingest.shards import ShardError, parse_shard
    from monitor.matching.topics import load_topics

    shard = getattr(args, "shard", None)
    try:
        parse_shard(shard)
    except ShardError as exc:
        print(f"monitor: --shard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = settings_from(args, feeds=feeds, shard=shard)
    # Validate before paying for Prefect's start-up; FeedListError and TopicConfigError reach main().
    feed_list = load_feeds(settings.feeds)
    load_topics(settings.topics)
    if feed_list.rejected and not feed_list.feeds:
        reasons = "; ".join(r.error for r in feed_list.rejected)
        print(f"monitor: no valid feed in {settings.feeds}: {reasons}", file=sys.stderr)
        return EXIT_USAGE
    for rejected in feed_list.rejected:
        print(f"monitor: skipping {rejected.error}", file=sys.stderr)
    owned = settings.feed_shard().select(feed_list.feeds)
    in_shard = f" (shard {settings.shard}: {len(owned)} of {len(feed_list.feeds)})" if settings.shard else ""
    on_dask = ""
    if settings.task_runner == "dask":
        cluster = settings.dask_address or f"a local cluster of {settings.dask_workers} workers"
        on_dask = f"; extracting and embedding on Dask ({cluster})"
    print(
        f"monitor: polling {len(owned)} feeds from {feeds}{in_shard}; store {settings.store_target}{on_dask}",
        file=sys.stderr,
    )
    started = time.monotonic()
    try:
        summary = run_ingest_flow(
            settings.db, feeds, settings.topics, settings.alerts_path, allow, poll_all, settings.shard
        )
    except FlowFailed as exc:
        print(f"monitor: run failed after {time.monotonic() - started:.1f} s: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print_summary(summary, time.monotonic() - started)
    return EXIT_OK


def print_summary(summary: RunSummary, elapsed: float) -> None:
    """One line of counts, then each failed feed and rejected feed-list entry."""
    c = summary.counts
    print(
        f"run {summary.run_id}: {c['feeds_total']} feeds ({c['feeds_ok']} ok, "
        f"{c['feeds_not_modified']} not modified, {c['feeds_failed']} failed), "
        f"{c['entries_new']} new entries, {c['articles_stored']} articles, "
        f"{c['matches_new']} new matches, {c['alerts_delivered']} alerts in {elapsed:.1f} s"
    )
    for name, error in summary.failed_feeds:
        print(f"  failed feed: {name}: {error}")
    for _name, error in summary.rejected_feeds:
        print(f"  rejected feed-list entry: {error}")


def cmd_run(args: argparse.Namespace) -> int:
    """``monitor run``: one ingest cycle over the user's feed list."""
    return _run(args, args.feeds, allow=None, poll_all=args.poll_all)


def cmd_demo(args: argparse.Namespace) -> int:
    """``monitor demo``: serve the sample site, ingest it, print what was flagged."""
    from monitor import demo, store

    try:
        with demo.serve_sample_site(port=args.port) as base:
            feeds = demo.write_feed_list(base, args.db.with_name("demo-feeds.yaml"))
            print(f"monitor: sample news site at {base}", file=sys.stderr)
            code = _run(args, feeds, allow=["127.0.0.1"], poll_all=True)
    except OSError as exc:
        print(
            f"monitor: cannot serve the sample site on port {args.port}: {exc} (try --port)", file=sys.stderr
        )
        return EXIT_FAILED
    if code != EXIT_OK:
        return code
    with store.connect(settings_from(args).store_target, read_only=True) as con:
        con.execute(FLAGGED_SQL)
        columns = [d[0] for d in con.description]
        rows = con.fetchall()
        (articles,) = con.execute("SELECT count(*) FROM articles").fetchone() or (0,)
    print(f"\nFlagged coverage ({len(rows)} matches among {articles} articles in {args.db}):")
    print_table(columns, rows, sys.stdout, max_width=70)
    alerts = settings_from(args).alerts_path
    print(f"\nAlerts: {alerts}   Explore: monitor sql --db {args.db} queries/new_matches_24h.sql")
    return EXIT_OK
