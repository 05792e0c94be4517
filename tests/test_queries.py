"""Every curated query in queries/ has a header, runs on a database the flow filled, and returns the columns it promises."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.ingest import ingest
from monitor import cli, store
from monitor.cli.sql import header, header_columns
from monitor.demo import FEED_NAMES
from monitor.matching.embedding import Encoder
from monitor.models import ReviewDecision
from monitor.store import reviews
from monitor.store.readcopy import load_fts, read_copy_path
from tests.conftest import REPO

QUERIES = sorted((REPO / "queries").glob("*.sql"))
SEARCH = (
    "negotiators in Vienna trying to restore the 2015 nuclear deal, sanctions relief and uranium enrichment"
)


def test_there_are_at_least_twelve_curated_queries() -> None:
    names = {q.name for q in QUERIES}
    assert len(names) >= 12
    assert {
        "new_matches_24h.sql",
        "search_hybrid.sql",
        "search_fulltext.sql",
        "similar_articles.sql",
    } <= names


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_header_says_what_it_answers_its_parameters_and_columns(query: Path) -> None:
    assert query.read_text(encoding="utf-8").startswith("-- Answers:")
    fields = header(query)
    assert {"Answers", "Parameters", "Columns"} <= set(fields)
    assert len(header_columns(query)) >= 3


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None, sample_site: str) -> Path:
    tmp = tmp_path_factory.mktemp("queries")
    feeds = [{"name": name, "url": f"{sample_site}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    feeds.append({"name": "Dead feed", "url": "http://127.0.0.1:9/never.xml"})
    feeds.append({"name": "Passwords", "url": "file:///etc/passwd"})  # rejected, and recorded
    (tmp / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    db = tmp / "m.duckdb"
    with store.connect(db) as con:  # a verdict before the run, so the read copy carries it
        pass
    ingest(db=str(db), feeds=str(tmp / "feeds.yaml"), topics=str(REPO / "topics.yaml"),
           alerts_file=str(tmp / "alerts.jsonl"), fetch_allow=["127.0.0.1"])  # fmt: skip
    with store.connect(db) as con:
        article_id, topic_id = con.execute(
            "SELECT article_id, topic_id FROM matches ORDER BY score DESC"
        ).fetchone()
        reviews.record_review(
            con, ReviewDecision(article_id, topic_id, "relevant", "tester"), store.now_utc()
        )
    # Re-publish the read copy so it holds the verdict too (the flow publishes after every run).
    from monitor.store.readcopy import refresh_read_copy

    refresh_read_copy(db)
    return read_copy_path(db)


def run_query(db: Path, query: Path, encoder: Encoder) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        load_fts(con)
        con.execute("SET VARIABLE days = 3650")
        con.execute("SET VARIABLE text = ?", [SEARCH])
        con.execute("SET VARIABLE text_vector = ?::FLOAT[]", [encoder.encode_queries([SEARCH])[0].tolist()])
        con.execute("SET VARIABLE text_model = ?", [encoder.name])
        cur = con.execute(query.read_text(encoding="utf-8"))
        return [d[0] for d in cur.description], cur.fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_runs_and_returns_the_columns_its_header_promises(
    filled_db: Path, query: Path, encoder: Encoder
) -> None:
    columns, rows = run_query(filled_db, query, encoder)
    assert columns == header_columns(query)
    assert rows, f"{query.name} returned nothing on a filled database"


@pytest.mark.slow
def test_feed_status_puts_the_dead_feed_first(filled_db: Path, encoder: Encoder) -> None:
    _, rows = run_query(filled_db, REPO / "queries/feed_status.sql", encoder)
    assert rows[0][0] == "Dead feed" and rows[0][1] == "temporary"
    assert {r[1] for r in rows[1:]} == {"ok", "invalid"}


@pytest.mark.slow
def test_errors_lists_failed_feeds_and_rejected_entries(filled_db: Path, encoder: Encoder) -> None:
    _, rows = run_query(filled_db, REPO / "queries/errors.sql", encoder)
    kinds = {(r[0], r[1], r[4]) for r in rows}
    assert ("feed", "temporary", "Dead feed") in kinds
    assert ("feed-list entry", "invalid", "Passwords") in kinds


@pytest.mark.slow
@pytest.mark.parametrize("name", ["search_hybrid.sql", "search_fulltext.sql", "similar_articles.sql"])
def test_search_ranks_the_planted_article_first(filled_db: Path, encoder: Encoder, name: str) -> None:
    columns, rows = run_query(filled_db, REPO / "queries" / name, encoder)
    first = dict(zip(columns, rows[0], strict=True))
    assert first["title"].startswith("Nuclear negotiators return to Vienna"), rows[:3]
    if name == "search_hybrid.sql":
        assert first["bm25_rank"] is not None and first["vector_rank"] is not None
        assert "Vienna" in first["best_passage"]


@pytest.mark.slow
def test_monitor_sql_embeds_the_text_parameter_and_reads_the_read_copy(
    filled_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = filled_db.with_name("m.duckdb")
    argv = ["sql", "--db", str(live), "--format", "json", "--param", f"text={SEARCH}", "--param", "limit=3",
            str(REPO / "queries/search_hybrid.sql")]  # fmt: skip
    assert cli.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and rows[0]["title"].startswith("Nuclear negotiators return to Vienna")


def test_sql_list_shows_every_query_with_its_header(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sql", "--list"]) == 0
    out = capsys.readouterr().out
    for query in QUERIES:
        assert f"queries/{query.name}" in out
        assert header(query)["Answers"][:40] in out


@pytest.mark.parametrize("order", [1, -1], ids=["a-first", "b-first"])
def test_new_outlets_names_one_first_article_when_two_share_the_minute(order: int) -> None:
    # Only the columns the query reads; two articles of one outlet published at the same time,
    # inserted in either order, must give the same first article, title and URL of one row.
    con = duckdb.connect()
    con.execute("CREATE TABLE sources (source_id TEXT, name TEXT)")
    con.execute(
        "CREATE TABLE articles (article_id TEXT, source_id TEXT, site_name TEXT, title TEXT, url TEXT,"
        " published_at TIMESTAMPTZ, fetched_at TIMESTAMPTZ)"
    )
    con.execute("CREATE TABLE matches (article_id TEXT, topic_id TEXT)")
    rows = [("a", "Title of b-page", "https://x.test/b"), ("b", "Title of a-page", "https://x.test/a")][
        ::order
    ]
    published = con.execute("SELECT date_trunc('minute', now() - INTERVAL 1 DAY)").fetchone()[0]
    for article_id, title, url in rows:
        con.execute(
            "INSERT INTO articles VALUES (?, 's', 'Outlet', ?, ?, ?, now())",
            [article_id, title, url, published],
        )
        con.execute("INSERT INTO matches VALUES (?, 'iran-missiles')", [article_id])
    got = con.execute((REPO / "queries/new_outlets.sql").read_text(encoding="utf-8")).fetchall()
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in got] == [
        ("iran-missiles", "Outlet", 2, "Title of a-page", "https://x.test/a")
    ]
