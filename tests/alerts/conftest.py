"""Databases with queued alerts, routed to the channels a test chooses, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor import store
from monitor.alerts.channels import ChannelContext, open_channel
from monitor.alerts.routing import ChannelSpec, file_spec
from monitor.ingest.guard import AddressGuard
from monitor.pipeline import store_batch
from tests.rows import FEED, TOPIC, article, match, passages, start_run


class Clock:
    """A clock that starts when first read (after whatever the test queued) and moves only when told.

    Starting at first use, not at creation, keeps rows queued on a slow machine from lying in its future.
    """

    def __init__(self) -> None:
        self._start: datetime | None = None
        self._offset = timedelta()

    @property
    def now(self) -> datetime:
        if self._start is None:
            self._start = store.now_utc() + timedelta(seconds=1)
        return self._start + self._offset

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def queue(db: Path, numbers: Sequence[int], specs: Sequence[ChannelSpec]) -> list[str]:
    """Store one article (its own story) per number, each matching topic t1, and queue their alerts.

    Returns:
        The alert ids, oldest first (each batch is queued a moment after the previous).
    """
    routes = {TOPIC.topic_id: list(specs)}
    with store.connect(db) as con:
        store.sync_sources(con, [FEED])
        store.save_topics(con, [TOPIC])
        run = start_run(con)
        for n in numbers:
            scored = replace(match(n), score=0.6 + n / 1000)
            store_batch(con, run, [article(n)], passages(n), [scored], [], routes)
        return [
            r[0] for r in con.execute("SELECT alert_id FROM alerts ORDER BY created_at, alert_id").fetchall()
        ]


@pytest.fixture
def open_channels(tmp_path: Path) -> Callable[[Sequence[ChannelSpec]], dict[str, object]]:
    def make(specs: Sequence[ChannelSpec], timeout_s: float = 3.0) -> dict[str, object]:
        ctx = ChannelContext(
            guard=AddressGuard(["127.0.0.1"]), total_timeout_s=timeout_s, read_timeout_s=timeout_s, echo=None
        )
        return {s.channel_id: open_channel(s, ctx, tmp_path / "alerts.jsonl") for s in specs}

    return make


@pytest.fixture
def sink(tmp_path: Path) -> ChannelSpec:
    return file_spec(tmp_path / "alerts.jsonl")
