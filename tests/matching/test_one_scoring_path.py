"""Ingest, rescore and evaluate score the same articles identically: one scoring function.

The topics include non-ASCII keywords (the Russian and Persian names of Iran and Tehran)
and a topic restricted to one language, the two places where the three paths used to differ.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from flows.ingest import ingest
from monitor import store
from monitor.evaluation.labels import LabelledItem
from monitor.evaluation.report import score_items
from monitor.matching.embedding import Encoder
from monitor.matching.rescore import score_archive
from monitor.matching.topics import load_topics
from tests.conftest import REPO
from tests.servers import ScriptedServer

pytestmark = pytest.mark.slow

PAGES = REPO / "tests/fixtures/pages"
SAMPLE = REPO / "monitor/demo/sample_site/articles"
TOPICS = {
    "topics": [
        {
            "id": "iran-any-language",
            "name": "Iran, named in any script",
            "description": "Iran's missiles and the nuclear talks.",
            # flag everything eligible, with either encoder, so every score is stored and compared
            "threshold": -1.0,
            "thresholds": {"multilingual-e5-small": -1.0},
            "keywords": ["Iran", "Tehran", "Иран", "Тегеран", "ایران", "تهران"],
            "exemplars": [
                "Iran test-fired a new medium-range ballistic missile, state media said.",
                "Negotiators met in Vienna to try to revive the 2015 nuclear deal with Iran.",
            ],
            "negatives": ["North Korea fired an intercontinental ballistic missile into the sea off Japan."],
        },
        {
            "id": "russian-only",
            "name": "Missile coverage in Russian",
            "description": "A topic restricted to one language.",
            "threshold": -1.0,
            "thresholds": {"multilingual-e5-small": -1.0},
            "language": "ru",
            "exemplars": ["Iran test-fired a new ballistic missile."],
        },
    ]
}
ARTICLES = {
    "/en/vienna.html": SAMPLE / "vienna-talks-resume-jcpoa.html",
    "/en/football.html": SAMPLE / "harbourside-united-late-winner.html",
    "/ru/ru-missile-test.html": PAGES / "ru-missile-test.html",
    "/fa/fa-nuclear-talks.html": PAGES / "fa-nuclear-talks.html",
}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("three-ways")
    topics = tmp / "topics.yaml"
    topics.write_text(yaml.safe_dump(TOPICS, allow_unicode=True), encoding="utf-8")
    with ScriptedServer() as server:
        items = ""
        for path, source in ARTICLES.items():
            html = source.read_text(encoding="utf-8").replace("{{BASE}}", server.base)
            # The sample pages name their own canonical URL; serve each at the URL it names.
            served = path if "demo" not in str(source) else f"/articles/{source.name}"
            server.add(served, 200, html, Content_Type="text/html; charset=utf-8")
            items += f"<item><title>{source.stem}</title><link>{server.base}{served}</link></item>"
        rss = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
        feed = server.add("/feed.xml", 200, rss, Content_Type="application/rss+xml")
        feeds = tmp / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"feeds": [{"name": "Mixed", "url": feed}]}), encoding="utf-8")
        ingest(db=str(tmp / "m.duckdb"), feeds=str(feeds), topics=str(topics),
               alerts_file=str(tmp / "alerts.jsonl"), fetch_allow=["127.0.0.1"])  # fmt: skip
    return tmp / "m.duckdb", topics


def test_ingest_rescore_and_evaluate_give_identical_scores(
    ingested: tuple[Path, Path], encoder: Encoder, route
) -> None:
    """The Persian article goes to the multilingual encoder at ingest, rescore and evaluate alike."""
    db, topics_file = ingested
    topics = load_topics(topics_file)
    with duckdb.connect(str(db), read_only=True) as con:
        at_ingest = {
            (a, t): (s, e, h, seq)
            for a, t, s, e, h, seq in con.execute(
                "SELECT article_id, topic_id, score, embedding_score, keyword_hits::VARCHAR, best_passage_seq "
                "FROM matches"
            ).fetchall()
        }
        stored = con.execute(
            "SELECT article_id, title, text, language FROM articles ORDER BY article_id"
        ).fetchall()
    languages = {a: lang for a, _, _, lang in stored}
    assert sorted(languages.values()) == ["en", "en", "fa", "ru"]

    with store.connect(db, read_only=True) as con:
        models = dict(con.execute("SELECT DISTINCT article_id, model FROM passages").fetchall())
        routing = route(topics, encoder)
        plan = score_archive(con, routing)
    at_rescore = {(m.article_id, m.topic_id): m for m in plan.matches}

    items = [LabelledItem(a, title, text, 0, lang=lang) for a, title, text, lang in stored]
    evaluated = score_items(items, topics, routing)
    non_english = {models[a] for a, lang in languages.items() if lang != "en"}
    assert non_english == {"multilingual-e5-small"}
    assert {models[a] for a, lang in languages.items() if lang == "en"} == {encoder.name}

    # The language rule: the Russian-only topic flags the Russian article and nothing else, everywhere.
    ru = next(a for a, lang in languages.items() if lang == "ru")
    assert {a for a, t in at_ingest if t == "russian-only"} == {ru}
    assert set(at_rescore) == set(at_ingest)
    eligible = np.isfinite(evaluated.scores)
    for i, (article_id, *_rest) in enumerate(stored):
        for t, topic in enumerate(topics):
            key = (article_id, topic.topic_id)
            assert eligible[i, t] == (key in at_ingest), key
            if key not in at_ingest:
                continue
            score, embedding, hits, seq = at_ingest[key]
            assert at_rescore[key].score == pytest.approx(score, abs=1e-6)
            assert at_rescore[key].embedding_score == pytest.approx(embedding, abs=1e-6)
            assert at_rescore[key].best_passage_seq == seq
            assert evaluated.scores[i, t] == pytest.approx(score, abs=1e-6), key
            assert yaml.safe_load(hits) == at_rescore[key].keyword_hits


def test_non_ascii_keywords_count_at_ingest_and_rescore(ingested: tuple[Path, Path]) -> None:
    db, _ = ingested
    with duckdb.connect(str(db), read_only=True) as con:
        hits = dict(
            con.execute(
                "SELECT a.language, m.keyword_hits::VARCHAR FROM matches m JOIN articles a USING (article_id) "
                "WHERE m.topic_id = 'iran-any-language'"
            ).fetchall()
        )
    assert "иран" in yaml.safe_load(hits["ru"]) and "тегеран" in yaml.safe_load(hits["ru"])
    assert "ایران" in yaml.safe_load(hits["fa"]) and "تهران" in yaml.safe_load(hits["fa"])
