"""Adaptive polling: when to poll each feed next, from what it publishes and how it answers."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.models import FeedPoll, FeedState, FetchStatus

DEFAULT_INTERVAL_S = 3600.0
# A feed that answered "not modified" is probably quieter than we thought: lengthen a little.
QUIET_GROWTH = 1.25


@dataclass(frozen=True)
class PollPlan:
    """The outcome of one poll for the feed's schedule and health."""

    next_poll_at: datetime
    interval_s: float
    consecutive_failures: int
    dead: bool
    not_modified_streak: int


def plan_next_poll(
    poll: FeedPoll,
    state: FeedState | None,
    now: datetime,
    min_interval_s: float = 300.0,
    max_interval_s: float = 86400.0,
    dead_after: int = 10,
) -> PollPlan:
    """Decide when a feed is due again.

    * A successful poll waits the feed's publishing interval (median gap between its
      recent entries), clamped to ``[min_interval_s, max_interval_s]`` and never shorter
      than what the server asked for (Cache-Control max-age, RSS ttl, sy:updatePeriod).
    * A not-modified poll lengthens the previous interval by a quarter.
    * A failed poll backs off exponentially from the minimum, and honours Retry-After.
    * After ``dead_after`` consecutive failures the feed is dead: it is polled once per
      ``max_interval_s`` and kept, never deleted.

    Args:
        poll: this poll's outcome.
        state: what was stored before this poll.
        now: the current time.
        min_interval_s: shortest interval.
        max_interval_s: longest interval.
        dead_after: consecutive failures that make a feed dead.

    Returns:
        The plan to store.
    """
    previous = (state.poll_interval_s if state else None) or DEFAULT_INTERVAL_S
    failures = state.consecutive_failures if state else 0
    streak = state.not_modified_streak if state else 0
    hints = [h for h in (poll.fetch.max_age_s, poll.ttl_s, poll.update_period_s) if h]
    status = poll.status
    if status is FetchStatus.OK:
        failures, streak = 0, 0
        interval = publishing_interval(poll) or previous
    elif status is FetchStatus.NOT_MODIFIED:
        failures, streak = 0, streak + 1
        interval = previous * QUIET_GROWTH
    else:
        failures += 1
        interval = min_interval_s * 2.0 ** min(failures - 1, 64)
        if poll.fetch.retry_after_s:
            hints.append(poll.fetch.retry_after_s)
    interval = min(max(interval, min_interval_s, *hints), max_interval_s) if hints else interval
    interval = min(max(interval, min_interval_s), max_interval_s)
    dead = failures >= dead_after
    if dead:
        interval = max_interval_s
    return PollPlan(now + timedelta(seconds=interval), interval, failures, dead, streak)


def publishing_interval(poll: FeedPoll, recent: int = 20) -> float | None:
    """Median gap in seconds between a feed's most recent dated entries, or None."""
    dates = sorted((e.published_at for e in poll.entries if e.published_at), reverse=True)[:recent]
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(dates) if a > b]
    return statistics.median(gaps) if gaps else None
