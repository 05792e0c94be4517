"""Publication dates: which ones to believe, and how page metadata dates are read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST_DATE = datetime(1995, 1, 1, tzinfo=UTC)
# Clock skew allowance: a date this far ahead is still believed.
FUTURE_SLACK = timedelta(hours=2)


def plausible_date(when: datetime, now: datetime) -> bool:
    """Tell whether a publication date is believable (not before 1995, not in the future).

    Args:
        when: a timezone-aware datetime.
        now: the current time.

    Returns:
        True when the date can be stored as a publication date.
    """
    return EARLIEST_DATE <= when <= now + FUTURE_SLACK


def parse_page_date(value: str | None) -> datetime | None:
    """Read an ISO date from page metadata into UTC (naive dates are taken as UTC)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
