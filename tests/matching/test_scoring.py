"""Topic matching with the real model on the sample site's articles."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from monitor.demo import load_manifest, site_root
from monitor.ingest.extraction import extract_article
from monitor.ingest.urls import canonicalize
from monitor.matching.embedding import Encoder
from monitor.matching.routing import Routing
from monitor.matching.scoring import ArticleText, TopicMatcher, TopicScores
from monitor.matching.topics import load_topics
from monitor.models import Entry, FetchResult, FetchStatus, PageFetch, Topic
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def one(
    matcher: TopicMatcher, vectors: np.ndarray, text: str = "", language: str | None = None
) -> TopicScores:
    """The first topic's scores of one article made of the given passage vectors."""
    return matcher.score_articles(vectors, np.array([0]), [ArticleText(text, language)])[0]


BASE = "http://127.0.0.1:9"
NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture(scope="module")
def routing(encoder: Encoder, multilingual_encoder: Encoder) -> Routing:
    """The shipped routing: English to MiniLM, every other language to multilingual-e5-small."""
    topics = load_topics(REPO / "topics.yaml")
    return Routing(topics, encoder, lambda: multilingual_encoder, multilingual_encoder.name)


@pytest.fixture(scope="module")
def sample_passages(routing: Routing):
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
    return slugs, articles, routing.embed(articles, 180, 30)


def test_sample_articles_flagged_by_topic_and_hard_negatives_not(routing: Routing, sample_passages) -> None:
    slugs, articles, passages = sample_passages
    flagged: dict[str, set[str]] = {}
    for m in routing.match(articles, passages):
        flagged.setdefault(slugs[m.article_id], set()).add(m.topic_id)
        assert m.best_passage and m.exemplar and m.score >= m.threshold
    want = {"missiles": "iran-missiles", "nuclear-talks": "jcpoa-talks"}
    for item in load_manifest():
        if item["topic"] == "none":
            assert item["slug"] not in flagged, item["slug"]
        else:
            # ``flagged_as``: the topics a known miss is measured to be flagged for instead
            for topic in item.get("flagged_as") or [want[item["topic"]]]:
                assert topic in flagged.get(item["slug"], set()), item["slug"]


def test_negative_exemplar_pulls_a_look_alike_below_the_threshold(encoder: Encoder) -> None:
    vectors = encoder.encode_passages(
        ["North Korea fired an intercontinental ballistic missile toward the Sea of Japan."]
    )
    positive_only = Topic("t", "t", "d", ("Iran test-fired a ballistic missile.",), (), 0.0)
    with_negative = Topic(
        "t", "t", "d", ("Iran test-fired a ballistic missile.",), ("North Korea launched a missile.",), 0.0
    )
    plain = one(TopicMatcher([positive_only], encoder), vectors).score[0]
    penalised = one(TopicMatcher([with_negative], encoder), vectors).score[0]
    assert penalised < plain - 0.1


def test_score_reports_best_passage_and_exemplar(encoder: Encoder) -> None:
    topic = Topic("t", "t", "d", ("Football match report", "Iran unveiled a new missile."), (), 0.0)
    vectors = encoder.encode_passages(
        ["The weather was mild.", "Tehran showed off a new ballistic missile on Friday."]
    )
    score = one(TopicMatcher([topic], encoder), vectors)
    assert score.best_seq[0] == 1 and score.exemplar[0] == 1
    assert np.isclose(
        score.score[0],
        float(vectors[1] @ encoder.encode_queries(["Iran unveiled a new missile."])[0]),
        atol=1e-5,
    )
