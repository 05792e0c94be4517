"""The pipeline's policy and stage functions, without Prefect."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor import pipeline, store
from monitor.config import Settings
from monitor.demo import FEED_NAMES
from monitor.ingest.feedlist import load_feeds
from monitor.models import FetchStatus, PageFailure
from monitor.pipeline import store_batch
from monitor.stories import text_hash
from tests.conftest import REPO
from tests.rows import (
    SAMPLE_ARTICLES,
    SAMPLE_FEEDS,
    article,
    counts,
    entry,
    match,
    passages,
    sighted,
    start_run,
)


def test_the_library_never_imports_prefect() -> None:
    probe = "import sys, monitor.pipeline, monitor.cli; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_run_counters_are_the_count_columns_of_runs(con) -> None:
    columns = {
        r[0]
        for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'runs'").fetchall()
    }
    assert set(pipeline.RUN_COUNTERS) <= columns and set(pipeline.STAGE_SECONDS) <= columns
    assert pipeline.RunSummary("r").counts == dict.fromkeys(pipeline.RUN_COUNTERS, 0)


def test_batches_cover_the_work_in_order() -> None:
    work = list(range(10))
    assert pipeline.batches(work, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # type: ignore[arg-type]
    assert pipeline.batches([], 4) == []


@pytest.mark.slow
def test_run_ingest_runs_directly_without_an_orchestrator(tmp_path: Path, sample_site: str) -> None:
    feeds = [{"name": name, "url": f"{sample_site}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    (tmp_path / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    settings = Settings(
        db=tmp_path / "m.duckdb",
        feeds=tmp_path / "feeds.yaml",
        topics=REPO / "topics.yaml",
        fetch_allow=["127.0.0.1"],
    )
    summary = pipeline.run_ingest(settings, poll_all=True)
    assert summary.counts["articles_stored"] == SAMPLE_ARTICLES
    assert summary.counts["feeds_ok"] == SAMPLE_FEEDS
    assert summary.counts["matches_new"] == summary.counts["alerts_delivered"] >= 6
    with store.connect(settings.db, read_only=True) as con:
        assert con.execute("SELECT status, flow_run_id FROM runs").fetchall() == [("completed", None)]


def test_two_shards_poll_disjoint_feeds_and_together_store_the_whole_site(
    tmp_path: Path, sample_site: str
) -> None:
    from monitor.ingest.shards import Shard

    feeds = [{"name": name, "url": f"{sample_site}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    (tmp_path / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    polled: list[set[str]] = []
    for k in (1, 2):
        settings = Settings(
            db=tmp_path / "m.duckdb", feeds=tmp_path / "feeds.yaml", topics=REPO / "topics.yaml",
            fetch_allow=["127.0.0.1"], shard=f"{k}/2", read_copy=False,
        )  # fmt: skip
        summary = pipeline.run_ingest(settings, poll_all=True)
        with store.connect(settings.db, read_only=True) as con:
            done = {
                r[0]
                for r in con.execute("SELECT url FROM sources WHERE last_polled_at IS NOT NULL").fetchall()
            }
        polled.append(done - set().union(*polled))
        assert summary.counts["feeds_total"] == len(polled[-1])
        assert polled[-1] == {f.url for f in Shard(k, 2).select(load_feeds(settings.feeds).feeds)}
    # Which shard owns a feed depends on its URL, and so on the sample site's random port: the
    # split of four feeds may be 4/0. Each shard polled exactly its own feeds (asserted above),
    # none twice, and together all of them.
    assert not polled[0] & polled[1]
    assert len(polled[0] | polled[1]) == SAMPLE_FEEDS
    with store.connect(tmp_path / "m.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (SAMPLE_ARTICLES,)


def test_save_batch_is_idempotent(con) -> None:
    run = start_run(con)
    args = ([article(1), article(2)], passages(1) + passages(2), [match(1)], [])
    first = store_batch(con, run, *args)
    assert first == {"articles": 2, "aliases": 0, "stories": 2, "passages": 4, "matches": 1, "alerts": 1}
    again = store_batch(con, run, *args)
    assert set(again.values()) == {0}
    assert counts(con) | {"sightings": 0} == {
        "articles": 2, "passages": 4, "matches": 1, "alerts": 1, "page_failures": 0, "sightings": 0,
    }  # fmt: skip
    stored = np.array(con.execute("SELECT embedding FROM passages ORDER BY article_id, seq").fetchall()[0][0])
    assert stored.shape == (384,)


def test_stored_article_clears_its_earlier_failure(con) -> None:
    store.record_failures(con, [PageFailure(entry(1), FetchStatus.TEMPORARY, 503, "HTTP 503")])
    store_batch(con, start_run(con), [article(1)], passages(1), [], [])
    assert counts(con)["page_failures"] == 0


def test_same_text_under_another_url_becomes_an_alias_of_the_stored_article(con) -> None:
    original = article(1)
    copy = replace(article(2), text=original.text.upper() + "  ", text_hash=text_hash(original.text.upper()))
    original = replace(original, text_hash=text_hash(original.text))
    sighted(con, 1, 2)
    run = start_run(con)
    first = store_batch(con, run, [original], passages(1), [match(1)], [])
    second = store_batch(con, run, [copy], passages(2), [match(2)], [])
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
    run = start_run(con)
    store_batch(con, run, [wire], passages(1), [match(1)], [])
    counts_copy = store_batch(con, run, [copy], passages(2), [match(2)], [])
    assert counts_copy["articles"] == 1 and counts_copy["stories"] == 0
    assert counts_copy["matches"] == 1 and counts_copy["alerts"] == 0
    stories = con.execute("SELECT DISTINCT story_id FROM articles").fetchall()
    assert stories == [(wire.article_id,)]


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)   # an analyst with the live file open
print("open", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.slow
def test_a_batch_is_kept_and_written_when_an_analyst_lets_go_of_the_live_file(
    tmp_path: Path, encoder
) -> None:
    from datetime import UTC, datetime

    from monitor.demo import site_root
    from monitor.ingest.urls import canonicalize
    from monitor.matching.topics import load_topics
    from monitor.models import Entry, FetchResult, PageFetch

    db = tmp_path / "m.duckdb"
    settings = Settings(db=db, topics=REPO / "topics.yaml", db_lock_timeout_s=1.5)
    with store.connect(db) as con:
        store.save_topics(con, load_topics(settings.topics))
    pages = []
    for slug in ("vienna-talks-resume-jcpoa", "north-korea-icbm-test"):
        url = f"http://127.0.0.1:9/articles/{slug}.html"
        html = (
            (site_root() / "articles" / f"{slug}.html")
            .read_text(encoding="utf-8")
            .replace("{{BASE}}", "http://127.0.0.1:9")
        )
        entry = Entry("s", url, canonicalize(url), None, datetime(2026, 12, 1, tzinfo=UTC), None)
        pages.append(PageFetch(entry, FetchResult(url, url, FetchStatus.OK, 200, "text/html", html.encode())))
    from monitor.matching.routing import Routing

    routing = Routing(load_topics(settings.topics), encoder)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "3.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = pipeline.process(settings, "run-1", pipeline.Downloaded(pages, []), routing)
    finally:
        holder.wait(timeout=30)
    assert result.counts["articles_stored"] == 2 and result.counts["matches_new"] >= 1
    assert result.seconds["store_s"] >= 1.5  # it waited for the analyst, then wrote the batch it kept
    with store.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (2,)


def test_run_seconds_are_recorded_per_stage(con) -> None:
    run = start_run(con)
    store.finish_run(
        con, run, "completed", {"articles_stored": 3}, None, {"poll_s": 1.25, "embed_s": 7.5, "total_s": 9.0}
    )
    row = con.execute(
        "SELECT articles_stored, poll_s, embed_s, total_s, fetch_s FROM runs WHERE run_id = ?", [run]
    ).fetchone()
    assert row == (3, 1.25, 7.5, 9.0, None)
    with pytest.raises(ValueError, match="no column"):
        store.finish_run(con, run, "completed", {}, None, {"nap_s": 1.0})


@pytest.mark.slow
def test_a_held_database_skips_vector_reuse_instead_of_failing_the_batch(tmp_path: Path) -> None:
    from monitor.pipeline.analysis import _StoredVectors

    db = tmp_path / "m.duckdb"
    with store.connect(db):
        pass
    settings = Settings(db=db, topics=REPO / "topics.yaml", db_lock_timeout_s=0.3)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert _StoredVectors(settings, "all-MiniLM-L6-v2")(["0" * 64]) == {}
    finally:
        holder.wait(timeout=30)
