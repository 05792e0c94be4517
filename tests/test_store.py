"""Storage: migrations, idempotent batch writes, alert outbox, lock handling."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from monitor import store
from monitor.models import (
    Article,
    Entry,
    Feed,
    FeedPoll,
    FetchResult,
    FetchStatus,
    Match,
    PageFailure,
    Passage,
    Topic,
)
from monitor.schedule import PollPlan, plan_next_poll
from monitor.stories import text_hash
from monitor.urls import canonicalize

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEED = Feed(name="Wire", url="http://127.0.0.1:9/feed.xml")
TOPIC = Topic("t1", "Topic one", "desc", ("an exemplar",), (), 0.5)


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
    return [Passage(entry(n).article_id, seq, f"passage {seq}", vecs[seq]) for seq in range(2)]


def match(n: int) -> Match:
    return Match(entry(n).article_id, "t1", 0.7, 0.5, 0, "passage 0", "an exemplar", "model")


@pytest.fixture
def con(tmp_path: Path):
    with store.connect(tmp_path / "m.duckdb") as connection:
        store.sync_sources(connection, [FEED])
        store.save_topics(connection, [TOPIC])
        yield connection


def counts(con) -> dict[str, int]:
    return {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("articles", "passages", "matches", "alerts", "page_failures", "sightings")
    }


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db) as con:
        versions = con.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert [v for v, _ in versions] == [1, 2, 3, 4, 5]
        assert store.migrate(con) == []
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 5


def test_save_batch_is_idempotent(con) -> None:
    run = store.start_run(con)
    args = ([article(1), article(2)], passages(1) + passages(2), [match(1)], [], "model")
    first = store.save_batch(con, run, *args)
    assert first == {"articles": 2, "aliases": 0, "stories": 2, "passages": 4, "matches": 1, "alerts": 1}
    again = store.save_batch(con, run, *args)
    assert set(again.values()) == {0}
    assert counts(con) | {"sightings": 0} == {
        "articles": 2, "passages": 4, "matches": 1, "alerts": 1, "page_failures": 0, "sightings": 0,
    }  # fmt: skip
    stored = np.array(con.execute("SELECT embedding FROM passages ORDER BY article_id, seq").fetchall()[0][0])
    assert stored.shape == (384,)


def sighted(con, *numbers: int) -> None:
    run = store.start_run(con)
    poll = FeedPoll(
        FEED, FetchResult(FEED.url, FEED.url, FetchStatus.OK, 200), tuple(entry(n) for n in numbers)
    )
    store.record_polls(con, run, [poll], [plan(poll)])


def plan(poll: FeedPoll) -> PollPlan:
    return plan_next_poll(poll, None, NOW)


def test_pending_entries_are_sightings_without_article_or_final_failure(con) -> None:
    sighted(con, 1, 2, 3, 4)
    store.save_batch(con, store.start_run(con), [article(1)], passages(1), [], [], "model")
    store.record_failures(con, [PageFailure(entry(2), FetchStatus.PERMANENT, 404, "HTTP 404")])
    store.record_failures(con, [PageFailure(entry(3), FetchStatus.TEMPORARY, 503, "HTTP 503")])
    todo = store.pending_entries(con, max_attempts=2)
    assert sorted(e.canonical_url for e in todo) == [entry(3).canonical_url, entry(4).canonical_url]
    assert entry(3) in todo  # title, date and summary survive the round trip
    store.record_failures(con, [PageFailure(entry(3), FetchStatus.TEMPORARY, 503, "HTTP 503")])
    assert con.execute("SELECT attempts FROM page_failures WHERE url = ?", [entry(3).url]).fetchone() == (2,)
    assert [e.canonical_url for e in store.pending_entries(con, max_attempts=2)] == [entry(4).canonical_url]


def test_an_article_seen_in_two_feeds_is_pending_once(con) -> None:
    other = Feed(name="Other", url="http://127.0.0.1:9/other.xml")
    store.sync_sources(con, [other])
    sighted(con, 5)
    twin = Entry(other.source_id, entry(5).url, entry(5).canonical_url, "t", NOW, None)
    poll = FeedPoll(other, FetchResult(other.url, other.url, FetchStatus.OK, 200), (twin,))
    store.record_polls(con, store.start_run(con), [poll], [plan(poll)])
    assert counts(con)["sightings"] == 2
    assert [e.source_id for e in store.pending_entries(con, max_attempts=5)] == [FEED.source_id]


def test_stored_article_clears_its_earlier_failure(con) -> None:
    store.record_failures(con, [PageFailure(entry(1), FetchStatus.TEMPORARY, 503, "HTTP 503")])
    store.save_batch(con, store.start_run(con), [article(1)], passages(1), [], [], "model")
    assert counts(con)["page_failures"] == 0


def test_record_polls_updates_feed_health_and_sightings_once(con) -> None:
    run = store.start_run(con)
    ok = FeedPoll(
        FEED, FetchResult(FEED.url, FEED.url, FetchStatus.OK, 200, etag='"v1"'), (entry(1), entry(2))
    )
    store.record_polls(con, run, [ok], [plan(ok)])
    store.record_polls(con, run, [ok], [plan(ok)])
    row = con.execute(
        "SELECT last_status, etag, entries_seen, consecutive_failures FROM sources WHERE source_id = ?",
        [FEED.source_id],
    ).fetchone()
    assert row == ("ok", '"v1"', 2, 0)
    assert counts(con)["sightings"] == 2
    bad = FeedPoll(FEED, FetchResult(FEED.url, FEED.url, FetchStatus.TEMPORARY, 503, error="HTTP 503"))
    state = store.sync_sources(con, [FEED])[FEED.source_id]
    first = plan_next_poll(bad, state, NOW)
    store.record_polls(con, run, [bad], [first])
    second = plan_next_poll(bad, store.sync_sources(con, [FEED])[FEED.source_id], NOW)
    store.record_polls(con, run, [bad], [second])
    assert second.interval_s == 2 * first.interval_s
    row = con.execute(
        "SELECT last_status, last_error, consecutive_failures, etag, last_success_at IS NOT NULL FROM sources"
    ).fetchone()
    assert row == ("temporary", "HTTP 503", 2, '"v1"', True)
    assert store.sync_sources(con, [FEED])[FEED.source_id].etag == '"v1"'


def test_alert_outbox_delivers_each_alert_once(con) -> None:
    run = store.start_run(con)
    store.save_batch(
        con, run, [article(1), article(2)], passages(1) + passages(2), [match(1), match(2)], [], "m"
    )
    pending = store.pending_alerts(con)
    assert len(pending) == 2 and pending[0].topic_name == "Topic one"
    store.mark_alerts(con, [pending[0].alert_id], {pending[1].alert_id: "sink down"}, "file:x")
    left = store.pending_alerts(con)
    assert [a.alert_id for a in left] == [pending[1].alert_id]
    assert con.execute(
        "SELECT attempts, last_error FROM alerts WHERE alert_id = ?", [left[0].alert_id]
    ).fetchone() == (
        1,
        "sink down",
    )


def test_killed_run_is_marked_abandoned_by_the_next(con) -> None:
    first = store.start_run(con)
    store.start_run(con)
    assert con.execute("SELECT status FROM runs WHERE run_id = ?", [first]).fetchone() == ("abandoned",)


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_writer_waits_for_a_held_lock_then_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with (
            pytest.raises(store.DatabaseBusy, match="locked by another process"),
            store.connect(db, lock_timeout_s=1),
        ):
            pass
        assert 0.9 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_writer_gets_the_database_once_an_analyst_lets_go(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with store.connect(db, lock_timeout_s=20) as con:
            assert con.execute("SELECT count(*) FROM schema_migrations").fetchone() == (5,)
    finally:
        holder.kill()
        holder.wait()


def test_read_only_open_of_missing_database_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(store.DatabaseMissing), store.connect(tmp_path / "nope.duckdb", read_only=True):
        pass


def test_same_text_under_another_url_becomes_an_alias_of_the_stored_article(con) -> None:
    original = article(1)
    copy = replace(article(2), text=original.text.upper() + "  ", text_hash=text_hash(original.text.upper()))
    original = replace(original, text_hash=text_hash(original.text))
    sighted(con, 1, 2)
    run = store.start_run(con)
    first = store.save_batch(con, run, [original], passages(1), [match(1)], [], "m")
    second = store.save_batch(con, run, [copy], passages(2), [match(2)], [], "m")
    assert first["articles"] == 1 and second == {
        **second,
        "articles": 0,
        "aliases": 1,
        "matches": 0,
        "alerts": 0,
    }
    alias = con.execute("SELECT alias_id, article_id, reason FROM article_aliases").fetchone()
    assert alias == (copy.article_id, original.article_id, "same-text")
    assert store.pending_entries(con, max_attempts=5) == []  # the copy's sighting is not pending work


def test_a_syndicated_copy_joins_the_story_and_adds_no_alert(con) -> None:
    body = " ".join(f"Sentence {i} of the wire story about the talks in Vienna today." for i in range(40))
    wire = replace(article(1), text=body, text_hash=text_hash(body))
    edited = (
        body.replace("Sentence 39", "Final sentence") + " Reporting by a correspondent; editing by a desk."
    )
    copy = replace(article(2), text=edited, text_hash=text_hash(edited))
    run = store.start_run(con)
    store.save_batch(con, run, [wire], passages(1), [match(1)], [], "m")
    counts_copy = store.save_batch(con, run, [copy], passages(2), [match(2)], [], "m")
    assert counts_copy["articles"] == 1 and counts_copy["stories"] == 0
    assert counts_copy["matches"] == 1 and counts_copy["alerts"] == 0
    stories = con.execute("SELECT DISTINCT story_id FROM articles").fetchall()
    assert stories == [(wire.article_id,)]


def test_a_populated_database_from_the_first_schema_migrates_to_the_latest(tmp_path: Path) -> None:
    """Upgrading a database with rows in every table (several ALTERs per table) works and keeps the rows."""
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as raw:
        raw.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL)"
        )
        raw.execute((store.db.MIGRATIONS / "001_initial.sql").read_text(encoding="utf-8"))
        raw.execute("INSERT INTO schema_migrations VALUES (1, '001_initial.sql', now())")
        raw.execute(
            "INSERT INTO sources (source_id, name, url, added_at) VALUES ('s', 'Wire', 'http://x/', now())"
        )
        raw.execute("INSERT INTO sightings VALUES ('a', 's', 'http://x/a', 't', NULL, now(), 'r')")
    with store.connect(db) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 5
        assert con.execute(
            "SELECT name, validators_trusted, dead, not_modified_streak FROM sources"
        ).fetchall() == [("Wire", True, False, 0)]
        assert [e.url for e in store.pending_entries(con, max_attempts=5)] == ["http://x/a"]
    with store.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM story_summary").fetchone() == (0,)
