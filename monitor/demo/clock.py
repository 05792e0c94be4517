"""Keep the sample site's dates recent: shift every date in its files by whole days to today.

The sample site was written on :data:`AUTHORED_AT`; its items are dated the days before. Served
as written, a week later they fall out of every "last N days" query, and the demo and the
tests that run those queries would show nothing. So the server moves each date forward by the
whole days between then and now: order, spacing and time of day stay as written, and every date
stays in the past.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

AUTHORED_AT = datetime(2026, 11, 28, tzinfo=UTC)

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_LONG_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# One pattern, so that each date is moved once (a prose date is also inside an RFC 822 one):
# RSS "Fri, 27 Nov 2026" (the weekday is rewritten), ISO "2026-11-21" (Atom, meta tags,
# JSON-LD; a time after it stays), and bylines "21 November 2026" or "21 Nov 2026".
_MONTH = "|".join(_LONG_MONTHS + _MONTHS)
_DATE = re.compile(
    r"\b(?:(?P<weekday>Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(?P<day>\d{1,2}) (?P<month>"
    + _MONTH
    + r") (?P<year>\d{4})\b"
    r"|(?<!\d)(?P<iso_year>\d{4})-(?P<iso_month>\d\d)-(?P<iso_day>\d\d)(?!\d)"
)


def days_since_authored(now: datetime) -> int:
    """Whole days from :data:`AUTHORED_AT` to ``now`` (0 before it).

    Args:
        now: the current time, timezone-aware.

    Returns:
        The number of days to move the site's dates forward.
    """
    return max(0, (now - AUTHORED_AT).days)


def shift_dates(text: str, days: int) -> str:
    """Move every date in a sample-site file forward by ``days``.

    Args:
        text: a feed or page as written.
        days: whole days to add (0 returns ``text`` unchanged).

    Returns:
        The text with its RFC 822, ISO 8601 and prose dates moved.
    """
    if days == 0:
        return text

    def moved(m: re.Match[str]) -> str:
        if m["iso_year"]:
            d = date(int(m["iso_year"]), int(m["iso_month"]), int(m["iso_day"])) + timedelta(days=days)
            return d.isoformat()
        # "May" is both; three letters read as the short form, so May 31 + 1 is "1 Jun".
        names = _MONTHS if len(m["month"]) == 3 else _LONG_MONTHS
        d = date(int(m["year"]), names.index(m["month"]) + 1, int(m["day"])) + timedelta(days=days)
        if m["weekday"]:
            return f"{_DAYS[d.weekday()]}, {d.day:02d} {_MONTHS[d.month - 1]} {d.year}"
        return f"{d.day} {names[d.month - 1]} {d.year}"

    return _DATE.sub(moved, text)
