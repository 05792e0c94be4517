"""What a run records: its counters, stage timings, summary, and the records passed between stages."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.models import (
    FeedState,
    PageFailure,
    PageFetch,
)
from monitor.store.runs import RUN_COLUMNS, STAGE_COLUMNS

logger = logging.getLogger(__name__)
Log = logging.Logger | logging.LoggerAdapter[Any]

# Counts every run records, stage by stage: the count columns of the runs table.
RUN_COUNTERS = RUN_COLUMNS


# Seconds spent per stage: the columns of the runs table.
STAGE_SECONDS = STAGE_COLUMNS
# A batch whose write finds the database held (an analyst on the live file) keeps its work and
# tries again; each attempt waits up to MONITOR_DB_LOCK_TIMEOUT_S.
STORE_ATTEMPTS = 3


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
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGE_SECONDS, 0.0))

    def add(
        self, counts: Mapping[str, int] | None = None, seconds: Mapping[str, float] | None = None
    ) -> None:
        """Add a stage's counts and durations to the run's."""
        for name, count in (counts or {}).items():
            self.counts[name] += count
        for name, spent in (seconds or {}).items():
            self.seconds[name] += spent


@dataclass(frozen=True)
class RunStart:
    """A recorded run's id, the stored state of every feed, and the feeds that are due."""

    run_id: str
    states: dict[str, FeedState]
    due: set[str]


@dataclass(frozen=True)
class BatchResult:
    """One processed batch: its counts and the seconds each stage took."""

    counts: dict[str, int]
    seconds: dict[str, float]


@dataclass(frozen=True)
class Downloaded:
    """One batch of article pages: those that downloaded, and those that failed."""

    pages: list[PageFetch]
    failures: list[PageFailure]
    seconds: float = 0.0  # how long the download took (it may overlap the previous batch's processing)
