"""Frozen records that travel between stages.

Third-party structures (feedparser dicts, trafilatura documents, httpx responses)
are parsed into these at the edge and never travel further in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from monitor.ingest.urls import stable_id


class FetchStatus(enum.StrEnum):
    """Outcome class of one HTTP fetch, recorded for every feed poll and page download."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    TEMPORARY = "temporary"  # worth retrying: timeouts, refused connections, 5xx, 429
    PERMANENT = "permanent"  # a verdict on the URL: 404, 410, not a feed, refused address, too large
    ERROR = "error"  # the monitor's own bug: an exception nobody anticipated; retried on later runs


@dataclass(frozen=True)
class Feed:
    """A feed a user asked to watch, as written in feeds.yaml."""

    name: str
    url: str
    language: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def source_id(self) -> str:
        """Stable id of the feed, derived from its URL."""
        return stable_id(self.url)


@dataclass(frozen=True)
class RejectedFeed:
    """An entry of feeds.yaml that cannot be polled, with the reason; recorded, never polled."""

    position: int  # 1-based place in the file
    name: str
    url: str
    error: str

    @property
    def source_id(self) -> str:
        """Id of its row in ``sources`` (by position, since a duplicate shares its URL)."""
        return stable_id(f"invalid:{self.position}:{self.url}")


@dataclass(frozen=True)
class FeedState:
    """What the database remembers about a feed between polls."""

    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    consecutive_failures: int = 0
    content_hash: str | None = None
    validators_trusted: bool = True
    not_modified_streak: int = 0
    poll_interval_s: float | None = None


@dataclass(frozen=True)
class FetchResult:
    """One HTTP GET after redirects, size caps and content checks."""

    url: str
    final_url: str
    status: FetchStatus
    http_status: int | None = None
    content_type: str | None = None
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    elapsed_s: float = 0.0
    retry_after_s: float | None = None
    max_age_s: float | None = None


@dataclass(frozen=True)
class Entry:
    """One item of a feed, parsed from feedparser's output."""

    source_id: str
    url: str
    canonical_url: str
    title: str | None
    published_at: datetime | None
    summary: str | None

    @property
    def article_id(self) -> str:
        """Id of the article this entry points at (from its canonical URL)."""
        return stable_id(self.canonical_url)


@dataclass(frozen=True)
class FeedPoll:
    """Result of polling one feed: the fetch outcome and the entries parsed from it."""

    feed: Feed
    fetch: FetchResult
    entries: tuple[Entry, ...] = ()
    parse_error: str | None = None
    bozo: bool = False
    content_hash: str | None = None
    unchanged: bool = False  # 200 with the same bytes as last time: treated as not modified
    validators_untrusted: bool = False  # same ETag or Last-Modified served for different content
    ttl_s: float | None = None  # RSS <ttl>
    update_period_s: float | None = None  # sy:updatePeriod / sy:updateFrequency
    crash: str | None = None  # an unanticipated exception while parsing: a bug, not a verdict

    @property
    def status(self) -> FetchStatus:
        """Fetch status: error after a crash, permanent when the body is no feed, not-modified when unchanged."""
        if self.crash is not None:
            return FetchStatus.ERROR
        if self.parse_error is not None:
            return FetchStatus.PERMANENT
        if self.unchanged:
            return FetchStatus.NOT_MODIFIED
        return self.fetch.status

    @property
    def error(self) -> str | None:
        """Human-readable reason for a failed poll, if any."""
        return self.crash or self.parse_error or self.fetch.error


@dataclass(frozen=True)
class PageFetch:
    """A downloaded article page, paired with the feed entry that pointed at it."""

    entry: Entry
    fetch: FetchResult


@dataclass(frozen=True)
class Article:
    """An extracted article, identified by its canonical URL."""

    article_id: str
    canonical_url: str
    url: str
    source_id: str
    title: str | None
    author: str | None
    published_at: datetime | None
    date_method: str
    language: str | None
    site_name: str | None
    text: str
    word_count: int
    extract_method: str
    fetched_at: datetime
    text_hash: str = ""
    entry_id: str | None = None  # id of the feed's URL when the page names another canonical URL


@dataclass(frozen=True)
class Alias:
    """Another URL of a stored article: same canonical link, or the same text."""

    alias_id: str  # stable id of the URL the feed gave
    article_id: str  # the stored article it turned out to be
    url: str
    reason: str  # canonical-link | same-text


@dataclass(frozen=True)
class StoryStart:
    """A new story, started by its first article."""

    story_id: str
    first_article_id: str
    first_source_id: str
    title: str | None


@dataclass(frozen=True)
class PageFailure:
    """An entry whose page could not be turned into an article, and why."""

    entry: Entry
    status: FetchStatus
    http_status: int | None
    error: str


@dataclass(frozen=True)
class Passage:
    """A chunk of an article's text with its embedding."""

    article_id: str
    seq: int
    text: str
    vector: np.ndarray = field(repr=False, compare=False)
    model: str = ""  # name of the encoder that produced the vector
    text_hash: str = ""  # passage_hash(text): identical passages share stored vectors


@dataclass(frozen=True)
class TopicChannel:
    """An alert channel configured for one topic in topics.yaml."""

    url: str = field(repr=False)  # may carry credentials: never stored or logged
    mode: str = "immediate"  # immediate | digest
    budget: int | None = None  # immediate alerts per 24 h (None: the default)


@dataclass(frozen=True)
class Topic:
    """An analyst's topic profile, loaded from topics.yaml."""

    topic_id: str
    name: str
    description: str
    exemplars: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    threshold: float = 0.5  # for the default encoder (all-MiniLM-L6-v2); see ``thresholds``
    keywords: tuple[str, ...] = ()  # for articles in every language
    keyword_penalty: float = 0.15
    language: str | None = None
    keywords_by_language: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (language, keywords): only there
    thresholds: tuple[tuple[str, float], ...] = ()  # (encoder name, threshold) for other encoders
    alert_mode: str = "immediate"  # mode on the channels of MONITOR_ALERT_URLS
    alert_budget: int | None = None  # immediate alerts per 24 h per channel (None: the default)
    alerts: tuple[TopicChannel, ...] = ()  # channels of this topic only


@dataclass(frozen=True)
class Match:
    """An article whose score against a topic reached the topic's threshold."""

    article_id: str
    topic_id: str
    score: float
    threshold: float
    best_passage_seq: int
    best_passage: str
    exemplar: str
    model: str
    embedding_score: float = 0.0
    keyword_hits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertCandidate:
    """A newly matched (article, topic) pair, with what decides which copy carries the alert."""

    article_id: str
    topic_id: str
    story_id: str
    published_at: datetime | None


@dataclass(frozen=True)
class QueuedAlert:
    """An alert to put in the outbox: one per story and topic."""

    alert_id: str
    article_id: str
    topic_id: str


@dataclass(frozen=True)
class Alert:
    """A notification about one match, waiting in the outbox or delivered."""

    alert_id: str
    article_id: str
    topic_id: str
    topic_name: str
    score: float
    title: str | None
    url: str
    site_name: str | None
    published_at: datetime | None
    passage: str
    story_id: str | None = None
    also_carried_by: tuple[str, ...] = ()
    keyword_hits: dict[str, int] = field(default_factory=dict)
    language: str | None = None
    threshold: float | None = None
    outlet: str | None = None  # the site's name, else the feed's

    @property
    def source_name(self) -> str:
        """Who published it, as a reader would name it."""
        return self.site_name or self.outlet or ""


@dataclass(frozen=True)
class QueueItem:
    """A flagged (article, topic) pair waiting for an analyst's verdict, with what they need to judge it."""

    article_id: str
    topic_id: str
    topic_name: str
    score: float
    threshold: float
    title: str | None
    url: str
    outlet: str | None
    published_at: datetime | None
    matched_at: datetime
    passage: str
    keyword_hits: dict[str, int]
    language: str | None
    story_id: str | None
    status: str  # new, or the latest verdict


@dataclass(frozen=True)
class ReviewDecision:
    """An analyst's verdict on an (article, topic) pair."""

    article_id: str
    topic_id: str
    verdict: str  # relevant | not-relevant
    reviewer: str
    note: str | None = None
