"""Read queries behind the review page: topics, a story's members and carriers, coverage per day.

Every query is parameterised; none is built from request input. Times come back as
timezone-aware datetimes; days are calendar days in UTC, whatever the session's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb


@dataclass(frozen=True)
class TopicCount:
    """A topic with the number of its matches still waiting for a verdict."""

    topic_id: str
    name: str
    pending: int


@dataclass(frozen=True)
class StoryHeader:
    """What a story is: its title, where and when it was first seen, how many outlets carried it."""

    story_id: str
    title: str | None
    first_seen_at: datetime
    first_article_id: str
    first_source_id: str
    first_outlet: str | None
    n_outlets: int


@dataclass(frozen=True)
class StoryArticle:
    """One member article of a story, with when it was published, first listed and fetched."""

    article_id: str
    title: str | None
    url: str
    outlet: str | None
    feed: str | None
    language: str | None
    published_at: datetime | None
    first_seen_at: datetime | None
    fetched_at: datetime


@dataclass(frozen=True)
class Carrier:
    """A feed that listed any article of a story, and when it first did."""

    source_id: str
    name: str
    first_seen_at: datetime | None


@dataclass(frozen=True)
class StoryMatch:
    """A match of one of a story's articles against a topic."""

    article_id: str
    topic_id: str
    topic_name: str
    score: float
    threshold: float
    status: str
    title: str | None


def topic_counts(con: duckdb.DuckDBPyConnection) -> list[TopicCount]:
    """Every topic, by name, with its number of pending (``new``) matches."""
    rows = con.execute(
        """
        SELECT t.topic_id, t.name, count(m.article_id)
        FROM topics t LEFT JOIN matches m ON m.topic_id = t.topic_id AND m.status = 'new'
        GROUP BY t.topic_id, t.name ORDER BY t.name, t.topic_id
        """
    ).fetchall()
    return [TopicCount(r[0], r[1], r[2]) for r in rows]


def story_header(con: duckdb.DuckDBPyConnection, story_id: str) -> StoryHeader | None:
    """A story's title, first outlet, first-seen time and outlet count, or None if there is no such story."""
    row = con.execute(
        """
        SELECT s.story_id, s.title, s.first_seen_at, st.first_article_id, s.first_source_id, s.first_outlet,
               s.n_outlets
        FROM story_summary s JOIN stories st USING (story_id) WHERE s.story_id = ?
        """,
        [story_id],
    ).fetchone()
    if row is None:
        return None
    return StoryHeader(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6] or 0))


def story_articles(con: duckdb.DuckDBPyConnection, story_id: str) -> list[StoryArticle]:
    """A story's member articles in the order they appeared (published, else first listed, else fetched)."""
    rows = con.execute(
        """
        WITH seen AS (
            SELECT coalesce(al.article_id, si.article_id) AS article_id, min(si.first_seen_at) AS first_seen
            FROM sightings si LEFT JOIN article_aliases al ON al.alias_id = si.article_id
            GROUP BY 1
        )
        SELECT a.article_id, a.title, a.url, coalesce(a.site_name, src.name), src.name, a.language,
               a.published_at, seen.first_seen, a.fetched_at
        FROM articles a LEFT JOIN sources src ON src.source_id = a.source_id
        LEFT JOIN seen ON seen.article_id = a.article_id
        WHERE a.story_id = ?
        ORDER BY coalesce(a.published_at, seen.first_seen, a.fetched_at), a.fetched_at, a.article_id
        """,
        [story_id],
    ).fetchall()
    return [StoryArticle(*r) for r in rows]


def story_carriers(con: duckdb.DuckDBPyConnection, story_id: str) -> list[Carrier]:
    """The feeds that carried a story (the ``story_carriers`` view), earliest first."""
    rows = con.execute(
        """
        WITH seen AS (
            SELECT si.source_id, min(si.first_seen_at) AS first_seen
            FROM sightings si LEFT JOIN article_aliases al ON al.alias_id = si.article_id
            JOIN articles a ON a.article_id = coalesce(al.article_id, si.article_id)
            WHERE a.story_id = $story GROUP BY 1
        )
        SELECT c.source_id, c.name, seen.first_seen
        FROM story_carriers c LEFT JOIN seen USING (source_id) WHERE c.story_id = $story
        ORDER BY seen.first_seen NULLS LAST, c.name, c.source_id
        """,
        {"story": story_id},
    ).fetchall()
    return [Carrier(r[0], r[1], r[2]) for r in rows]


def story_matches(con: duckdb.DuckDBPyConnection, story_id: str) -> list[StoryMatch]:
    """The matches of a story's articles, best score first."""
    rows = con.execute(
        """
        SELECT m.article_id, m.topic_id, t.name, m.score, m.threshold, m.status, a.title
        FROM matches m JOIN articles a USING (article_id) JOIN topics t USING (topic_id)
        WHERE a.story_id = ?
        ORDER BY m.score DESC, m.topic_id, m.article_id
        """,
        [story_id],
    ).fetchall()
    return [StoryMatch(*r) for r in rows]


def coverage_days(today: date, days: int) -> list[date]:
    """The ``days`` calendar days ending with ``today``, oldest first."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def coverage_by_day(
    con: duckdb.DuckDBPyConnection, today: date, days: int
) -> tuple[list[tuple[str, str]], dict[str, dict[date, int]]]:
    """Matches per topic per day over the last ``days`` days (UTC), by publication date.

    A match whose article has no publication date counts on the day it was matched.

    Args:
        con: the database.
        today: the last day of the window.
        days: how many days the window spans (``today`` included).

    Returns:
        ``(topics, counts)``: every topic as ``(topic_id, name)`` by name (a topic without matches
        in the window is still listed), and ``counts[topic_id][day]`` for the days that have any.
    """
    since = today - timedelta(days=days - 1)
    topics = con.execute("SELECT topic_id, name FROM topics ORDER BY name, topic_id").fetchall()
    rows = con.execute(
        """
        SELECT m.topic_id, CAST(timezone('UTC', coalesce(a.published_at, m.matched_at)) AS DATE) AS day,
               count(*)
        FROM matches m JOIN articles a USING (article_id)
        WHERE CAST(timezone('UTC', coalesce(a.published_at, m.matched_at)) AS DATE) BETWEEN $since AND $until
        GROUP BY ALL
        """,
        {"since": since, "until": today},
    ).fetchall()
    counts: dict[str, dict[date, int]] = {}
    for topic_id, day, n in rows:
        counts.setdefault(topic_id, {})[day] = int(n)
    return [(t[0], t[1]) for t in topics], counts
