"""A small review database for the review page's tests, built without the model.

Two topics; five articles from three feeds, each stored in its own batch (so the queue,
newest first, lists them in reverse); one hostile article (markup in its title and passage,
a ``javascript:`` URL); one French article; and one story of two articles carried by all
three feeds (Wire first, then Daily Two and Mirror Three).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from monitor import store
from monitor.ingest.urls import canonicalize
from monitor.models import Article, Entry, Feed, FeedPoll, FetchResult, FetchStatus, Match, Passage, Topic
from monitor.pipeline import store_batch
from tests.rows import FEED, TOPIC, plan, start_run

DAILY = Feed(name="Daily Two", url="http://127.0.0.1:9/daily.xml")
MIRROR = Feed(name="Mirror Three", url="http://127.0.0.1:9/mirror.xml")
HARBOUR = Topic(
    "t2", "Harbour strikes", "dock workers' strikes", ("dockers walk out",), (), 0.45, ("harbour", "strike")
)
HOSTILE = "<script>alert(1)</script>"
STORY_TEXT = " ".join(f"storyword{i}" for i in range(160))


@dataclass(frozen=True)
class Stored:
    """One stored article: ids and what a test checks against."""

    article_id: str
    topic_id: str
    title: str
    score: float
    threshold: float
    published: date | None


@dataclass(frozen=True)
class ReviewDb:
    """The database and what it holds, in storage order (the queue lists them newest first)."""

    path: Path
    articles: tuple[Stored, ...]
    story_id: str
    today: date

    @property
    def queue_order(self) -> list[str]:
        """Article ids as the queue should list them: the last stored first."""
        return [a.article_id for a in reversed(self.articles)]


def _entry(feed: Feed, slug: str, title: str) -> Entry:
    url = f"http://127.0.0.1:9/{slug}.html"
    return Entry(feed.source_id, url, canonicalize(url), title, None, "summary")


def _passages(article_id: str, seed: int) -> list[Passage]:
    vecs = np.random.default_rng(seed).normal(size=(1, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [Passage(article_id, 0, "passage 0", vecs[0], "model")]


def build_review_db(path: Path) -> ReviewDb:
    """Create the database at ``path`` (see the module docstring)."""
    today = datetime.now(UTC).date()

    def day(offset: int | None) -> datetime | None:
        return None if offset is None else datetime.combine(today - timedelta(days=offset), time(6), UTC)

    # (feed, slug, title, language, text, topic, score, passage, keyword hits, days ago, url override)
    specs = [
        (FEED, "one", "Ministers meet on budget", "en", " ".join(f"alpha{i}" for i in range(150)),
         TOPIC, 0.71, "The ministers met to agree the budget.", {}, 2, None),
        (FEED, "two", f"{HOSTILE} Harbour strike spreads", "en", " ".join(f"beta{i}" for i in range(150)),
         HARBOUR, 0.66, f"{HOSTILE} The harbour strike & lockout <b>spread</b> to Strike Bay.",
         {"harbour": 1, "strike": 2}, 0, "javascript:alert(2)"),
        (DAILY, "trois", "Grève au port de Marseille", "fr", " ".join(f"gamma{i}" for i in range(150)),
         HARBOUR, 0.52, "Les dockers du port de Marseille sont en grève depuis lundi.", {}, None, None),
        (FEED, "story-a", "Flood warning issued", "en", STORY_TEXT,
         TOPIC, 0.64, "A flood warning was issued for the valley.", {}, 1, None),
        (DAILY, "story-b", "Valley flood warning (update)", "en", STORY_TEXT + " " + " ".join(f"extra{i}" for i in range(20)),
         TOPIC, 0.61, "Officials issued a flood warning for the valley on Monday.", {}, 1, None),
    ]  # fmt: skip
    stored: list[Stored] = []
    with store.connect(path) as con:
        store.sync_sources(con, [FEED, DAILY, MIRROR])
        store.save_topics(con, [TOPIC, HARBOUR])
        run = start_run(con)
        entries = {slug: _entry(feed, slug, title) for feed, slug, title, *_ in specs}
        # Mirror Three lists the first story article too: the story's third carrier.
        listings = {
            FEED: [entries[s] for s in ("one", "two", "story-a")],
            DAILY: [entries[s] for s in ("trois", "story-b")],
            MIRROR: [_entry(MIRROR, "story-a", "Flood warning issued")],
        }
        for feed, listed in listings.items():
            poll = FeedPoll(feed, FetchResult(feed.url, feed.url, FetchStatus.OK, 200), tuple(listed))
            store.record_polls(con, run, [poll], [plan(poll)])
        for seed, (feed, slug, title, lang, text, topic, score, passage, hits, ago, url) in enumerate(specs):
            e = entries[slug]
            published = day(ago)
            art = Article(
                e.article_id, e.canonical_url, url or e.url, feed.source_id, title, None, published,
                "feed" if published else "first-seen", lang, None, text, len(text.split()), "trafilatura",
                store.now_utc(),
            )  # fmt: skip
            found = Match(
                e.article_id, topic.topic_id, score, topic.threshold, 0, passage, topic.exemplars[0], "model",
                score, hits,
            )  # fmt: skip
            store_batch(con, run, [art], _passages(e.article_id, seed), [found], [])
            stored.append(
                Stored(
                    e.article_id,
                    topic.topic_id,
                    title,
                    score,
                    topic.threshold,
                    published.date() if published else None,
                )
            )
        story_id = con.execute(
            "SELECT story_id FROM articles WHERE article_id = ?", [stored[3].article_id]
        ).fetchone()
        same = con.execute(
            "SELECT story_id FROM articles WHERE article_id = ?", [stored[4].article_id]
        ).fetchone()
    assert story_id is not None and same == story_id, "the two flood articles should form one story"
    return ReviewDb(path, tuple(stored), story_id[0], today)
