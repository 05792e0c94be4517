"""Topic matching with the real model on the sample site's articles."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from monitor.demo import load_manifest, site_root
from monitor.embed import Embedder, embed_articles
from monitor.extract import extract_article
from monitor.match import TopicMatcher
from monitor.models import Entry, FetchResult, FetchStatus, PageFetch, Topic
from monitor.topics import load_topics
from monitor.urls import canonicalize
from tests.conftest import REPO

pytestmark = pytest.mark.slow
BASE = "http://127.0.0.1:9"
NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_passages(embedder: Embedder):
    articles = []
    for item in load_manifest():
        url = f"{BASE}/articles/{item['slug']}.html"
        html = (
            (site_root() / "articles" / f"{item['slug']}.html")
            .read_text(encoding="utf-8")
            .replace("{{BASE}}", BASE)
        )
        entry = Entry("s", url, canonicalize(url), None, None, None)
        fetch = FetchResult(url, url, FetchStatus.OK, 200, "text/html", html.encode())
        articles.append(extract_article(PageFetch(entry, fetch), NOW))
    slugs = {a.article_id: a.url.rsplit("/", 1)[-1].removesuffix(".html") for a in articles}
    return slugs, articles, embed_articles(embedder, articles)


def test_sample_articles_flagged_by_topic_and_hard_negatives_not(embedder: Embedder, sample_passages) -> None:
    slugs, articles, passages = sample_passages
    matcher = TopicMatcher(load_topics(REPO / "topics.yaml"), embedder)
    flagged: dict[str, set[str]] = {}
    for m in matcher.match(articles, passages):
        flagged.setdefault(slugs[m.article_id], set()).add(m.topic_id)
        assert m.best_passage and m.exemplar and m.score >= m.threshold
    want = {"missiles": "iran-missiles", "nuclear-talks": "jcpoa-talks"}
    for item in load_manifest():
        if item["topic"] == "none":
            assert item["slug"] not in flagged, item["slug"]
        else:
            assert want[item["topic"]] in flagged.get(item["slug"], set()), item["slug"]


def test_negative_exemplar_pulls_a_look_alike_below_the_threshold(embedder: Embedder) -> None:
    vectors = embedder.encode(
        ["North Korea fired an intercontinental ballistic missile toward the Sea of Japan."]
    )
    positive_only = Topic("t", "t", "d", ("Iran test-fired a ballistic missile.",), (), 0.0)
    with_negative = Topic(
        "t", "t", "d", ("Iran test-fired a ballistic missile.",), ("North Korea launched a missile.",), 0.0
    )
    plain = TopicMatcher([positive_only], embedder).score(vectors)[0].score
    penalised = TopicMatcher([with_negative], embedder).score(vectors)[0].score
    assert penalised < plain - 0.1


def test_score_reports_best_passage_and_exemplar(embedder: Embedder) -> None:
    topic = Topic("t", "t", "d", ("Football match report", "Iran unveiled a new missile."), (), 0.0)
    vectors = embedder.encode(
        ["The weather was mild.", "Tehran showed off a new ballistic missile on Friday."]
    )
    score = TopicMatcher([topic], embedder).score(vectors)[0]
    assert score.best_passage_seq == 1 and score.exemplar_index == 1
    assert np.isclose(
        score.score, float(vectors[1] @ embedder.encode(["Iran unveiled a new missile."])[0]), atol=1e-5
    )
