"""Rows for storage and pipeline tests: a feed, a topic, articles, passages and matches by number."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from monitor import store
from monitor.ingest.schedule import PollPlan, plan_next_poll
from monitor.ingest.urls import canonicalize
from monitor.models import Article, Entry, Feed, FeedPoll, FetchResult, FetchStatus, Match, Passage, Topic
from monitor.store.lease import Holder, WriterLease

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEED = Feed(name="Wire", url="http://127.0.0.1:9/feed.xml")
TOPIC = Topic("t1", "Topic one", "desc", ("an exemplar",), (), 0.5)


LEASE = WriterLease(Path("test.writer"), Holder(os.getpid(), socket.gethostname(), "pytest", "now"))


def start_run(con: duckdb.DuckDBPyConnection) -> str:
    return store.start_run(con, LEASE)


def entry(n: int) -> Entry:
    url = f"http://127.0.0.1:9/a/{n}.html?utm_source=x"
    return Entry(FEED.source_id, url, canonicalize(url), f"Title {n}", NOW, "summary")


def article(n: int) -> Article:
    e = entry(n)
    return Article(
        e.article_id, e.canonical_url, e.url, e.source_id, e.title, "Author", NOW, "feed", "en", "Wire",
        " ".join(f"word{n}x{i}" for i in range(150)), 100, "trafilatura", NOW,
    )  # fmt: skip


def passages(n: int) -> list[Passage]:
    rng = np.random.default_rng(n)
    vecs = rng.normal(size=(2, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [Passage(entry(n).article_id, seq, f"passage {seq}", vecs[seq], "model") for seq in range(2)]


def match(n: int) -> Match:
    return Match(entry(n).article_id, "t1", 0.7, 0.5, 0, "passage 0", "an exemplar", "model")


def counts(con) -> dict[str, int]:
    return {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("articles", "passages", "matches", "alerts", "page_failures", "sightings")
    }


def sighted(con, *numbers: int) -> None:
    run = start_run(con)
    poll = FeedPoll(
        FEED, FetchResult(FEED.url, FEED.url, FetchStatus.OK, 200), tuple(entry(n) for n in numbers)
    )
    store.record_polls(con, run, [poll], [plan(poll)])


def plan(poll: FeedPoll) -> PollPlan:
    return plan_next_poll(poll, None, NOW)


def sample_site_size() -> tuple[int, int]:
    """How many articles and feeds the demo sample site serves, so tests follow the site as it grows."""
    from monitor.demo import FEED_NAMES, load_manifest

    return len(load_manifest()), len(FEED_NAMES)


SAMPLE_ARTICLES, SAMPLE_FEEDS = sample_site_size()
