"""Rescoring from stored embeddings agrees with ingest, follows topic edits, and keeps reviews."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.ingest import ingest
from monitor import cli, store
from monitor.demo import FEED_NAMES
from monitor.embed import Embedder
from monitor.match import TopicMatcher
from monitor.rescore import rescore
from monitor.topics import load_topics
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None, sample_site: str) -> Path:
    tmp = tmp_path_factory.mktemp("rescore")
    feeds = [{"name": name, "url": f"{sample_site}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    (tmp / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    ingest(db=str(tmp / "m.duckdb"), feeds=str(tmp / "feeds.yaml"), topics=str(REPO / "topics.yaml"),
           alerts_file=str(tmp / "alerts.jsonl"), fetch_allow=["127.0.0.1"])  # fmt: skip
    return tmp / "m.duckdb"


@pytest.fixture
def db(ingested: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "m.duckdb"
    shutil.copy(ingested, copy)
    return copy


def match_rows(db: Path) -> dict[tuple[str, str], tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT article_id, topic_id, round(score, 5), best_passage_seq, exemplar, keyword_hits::VARCHAR, status "
            "FROM matches"
        ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_rescore_with_unchanged_topics_reproduces_ingest(db: Path, embedder: Embedder) -> None:
    before = match_rows(db)
    matcher = TopicMatcher(load_topics(REPO / "topics.yaml"), embedder)
    with store.connect(db) as con:
        summary = rescore(con, matcher)
    assert summary["added"] == summary["removed"] == 0
    assert summary["articles"] == 14 and summary["matches"] == len(before)
    assert match_rows(db) == before


def test_rescore_follows_threshold_changes_and_keeps_reviewed_matches(db: Path, embedder: Embedder) -> None:
    topics = load_topics(REPO / "topics.yaml")
    with store.connect(db) as con:
        reviewed = con.execute("SELECT article_id, topic_id FROM matches ORDER BY score LIMIT 1").fetchone()
        con.execute(
            "UPDATE matches SET status = 'relevant' WHERE article_id = ? AND topic_id = ?", list(reviewed)
        )
        strict = TopicMatcher([replace(t, threshold=0.99) for t in topics], embedder)
        gone = rescore(con, strict)
        remaining = con.execute("SELECT article_id, topic_id, status FROM matches").fetchall()
        alerts_left = con.execute("SELECT count(*) FROM alerts WHERE delivered_at IS NULL").fetchone()[0]
    assert gone["matches"] == 0 and gone["removed"] == len(match_rows(db)) + gone["removed"] - 1
    assert remaining == [(*reviewed, "relevant")]
    assert alerts_left == 0

    loose = TopicMatcher([replace(t, threshold=0.3) for t in topics], embedder)
    with store.connect(db) as con:
        # Articles already alerted once (before the strict rescore removed their match) are not alerted again.
        already_alerted = con.execute(
            "SELECT count(*) FROM alerts WHERE delivered_at IS NOT NULL"
        ).fetchone()[0]
        grown = rescore(con, loose, alert=True)
        queued = con.execute("SELECT count(*) FROM alerts WHERE delivered_at IS NULL").fetchone()[0]
        per_pair = con.execute(
            "SELECT max(n) FROM (SELECT count(*) n FROM alerts GROUP BY article_id, topic_id)"
        )
        assert per_pair.fetchone()[0] == 1
    assert grown["added"] > 8
    assert grown["alerts"] == queued == grown["added"] - (already_alerted - 1)  # minus the reviewed match's


def test_explain_prints_the_evidence(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with duckdb.connect(str(db), read_only=True) as con:
        article_id, passage = con.execute(
            "SELECT article_id, best_passage FROM matches ORDER BY score DESC LIMIT 1"
        ).fetchone()
    assert cli.main(["explain", "--db", str(db), article_id[:8]]) == 0
    out = capsys.readouterr().out
    assert "flagged: score" in out and "closest exemplar:" in out and "keywords: iran x" in out
    assert passage[:80] in out
    assert cli.main(["explain", "--db", str(db), "nonexistent-id"]) == 1
