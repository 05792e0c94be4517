"""Every curated query in queries/ has a header and runs against a database the flow filled."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from flows.ingest import ingest
from monitor.demo import FEED_NAMES
from tests.conftest import REPO

QUERIES = sorted((REPO / "queries").glob("*.sql"))


def test_there_are_curated_queries() -> None:
    names = {q.name for q in QUERIES}
    assert {"new_matches_24h.sql", "articles_per_outlet_per_day.sql", "feed_status.sql"} <= names


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_header_says_what_it_answers_and_its_parameters(query: Path) -> None:
    header = [line for line in query.read_text(encoding="utf-8").splitlines() if line.startswith("--")]
    text = "\n".join(header)
    assert query.read_text(encoding="utf-8").startswith("-- Answers:")
    assert "Parameters:" in text


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None, sample_site: str) -> Path:
    tmp = tmp_path_factory.mktemp("queries")
    feeds = [{"name": name, "url": f"{sample_site}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    feeds.append({"name": "Dead feed", "url": "http://127.0.0.1:9/never.xml"})
    feeds.append({"name": "Passwords", "url": "file:///etc/passwd"})  # rejected, and recorded
    (tmp / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    ingest(
        db=str(tmp / "m.duckdb"),
        feeds=str(tmp / "feeds.yaml"),
        topics=str(REPO / "topics.yaml"),
        alerts_file=str(tmp / "alerts.jsonl"),
        fetch_allow=["127.0.0.1"],
    )
    return tmp / "m.duckdb"


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_runs_and_returns_rows(filled_db: Path, query: Path) -> None:
    with duckdb.connect(str(filled_db), read_only=True) as con:
        con.execute("SET VARIABLE days = 3650")
        rows = con.execute(query.read_text(encoding="utf-8")).fetchall()
    assert rows, f"{query.name} returned nothing on a filled database"


@pytest.mark.slow
def test_feed_status_puts_the_dead_feed_first(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db), read_only=True) as con:
        rows = con.execute((REPO / "queries/feed_status.sql").read_text(encoding="utf-8")).fetchall()
    assert rows[0][0] == "Dead feed" and rows[0][1] == "temporary"
    assert {r[1] for r in rows[1:]} == {"ok", "invalid"}


@pytest.mark.slow
def test_errors_lists_failed_feeds_and_rejected_entries(filled_db: Path) -> None:
    with duckdb.connect(str(filled_db), read_only=True) as con:
        rows = con.execute((REPO / "queries/errors.sql").read_text(encoding="utf-8")).fetchall()
    kinds = {(r[0], r[1], r[4]) for r in rows}
    assert ("feed", "temporary", "Dead feed") in kinds
    assert ("feed-list entry", "invalid", "Passwords") in kinds
