"""The review page's app through Starlette's TestClient: pages, the verdict API and its guards."""

from __future__ import annotations

import fcntl
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from monitor import store
from monitor.alerts.messages import NOT_TRANSLATED
from monitor.config import Settings
from monitor.store.lease import lease_path
from monitor.ui.app import create_app, is_loopback, passage_html, safe_href
from tests.ui import HOSTILE, ReviewDb, build_review_db

BASE = "http://127.0.0.1:8780"
UI = {"X-Monitor-UI": "1"}


@pytest.fixture
def review_db(tmp_path: Path) -> ReviewDb:
    return build_review_db(tmp_path / "review.duckdb")


def _client(db: ReviewDb, **settings: object) -> TestClient:
    app = create_app(
        Settings(db=db.path, reviewer="ana", **settings),
        clock=lambda: datetime.combine(db.today, time(12), UTC),
    )
    return TestClient(app, base_url=BASE)


@pytest.fixture
def client(review_db: ReviewDb) -> Iterator[TestClient]:
    with _client(review_db) as c:
        yield c


def _queue_ids(html: str) -> list[str]:
    return re.findall(r'data-article-id="([^"]+)"', html)


def _post(client: TestClient, body: object, headers: dict[str, str] | None = None):
    return client.post("/api/review", json=body, headers=UI if headers is None else headers)


def test_queue_lists_pending_matches_newest_first(client: TestClient, review_db: ReviewDb) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert _queue_ids(page.text) == review_db.queue_order
    assert page.text.count('class="item current"') == 1
    assert re.search(r'class="item current"[^>]*data-article-id="' + review_db.queue_order[0], page.text)
    # Score and threshold, outlet, and the topic's name are shown for each item.
    assert "score <strong>0.610</strong> · threshold 0.500" in page.text
    assert "Harbour strikes" in page.text and "Daily Two" in page.text
    assert '<span id="pending-count">5</span>' in page.text


def test_queue_filters_by_topic(client: TestClient, review_db: ReviewDb) -> None:
    harbour = [a.article_id for a in reversed(review_db.articles) if a.topic_id == "t2"]
    assert _queue_ids(client.get("/", params={"topic": "t2"}).text) == harbour
    assert client.get("/", params={"topic": "nope"}).status_code == 400
    assert client.get("/", params={"limit": "0"}).status_code == 400
    two = client.get("/", params={"limit": "2"}).text
    assert _queue_ids(two) == review_db.queue_order[:2]
    assert "Showing the newest 2 of 5" in two
    assert "Showing the newest" not in client.get("/").text


def test_queue_escapes_hostile_titles_passages_and_links(client: TestClient) -> None:
    html = client.get("/").text
    assert HOSTILE not in html
    assert "<b>spread</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Harbour strike spreads" in html
    assert "&lt;b&gt;spread&lt;/b&gt;" in html
    # The topic's keywords are highlighted inside the escaped passage.
    assert "The <mark>harbour</mark> <mark>strike</mark> &amp; lockout" in html
    assert "to <mark>Strike</mark> Bay" in html
    assert 'href="javascript:' not in html
    assert "script-src 'self'" in client.get("/").headers["content-security-policy"]


def test_non_english_items_say_they_are_not_translated(client: TestClient) -> None:
    html = client.get("/").text
    assert html.count(NOT_TRANSLATED) == 1
    assert f"Language: fr — {NOT_TRANSLATED}" in html


def test_passage_html_never_splits_entities() -> None:
    marked = passage_html('Tom & "Jerry" amp <i>', ["amp", "jerry"])
    assert str(marked) == "Tom &amp; &#34;<mark>Jerry</mark>&#34; <mark>amp</mark> &lt;i&gt;"
    assert str(passage_html("a \x02b\x03 c", ["b"])) == "a <mark>b</mark> c"


def test_safe_href_allows_only_http_links() -> None:
    assert safe_href("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert safe_href("HTTP://example.org/") == "HTTP://example.org/"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "//example.org/",
        "/relative",
        "http://a b/",
        None,
    ):
        assert safe_href(bad) is None, bad


def test_api_records_a_verdict_and_the_match_leaves_the_queue(
    client: TestClient, review_db: ReviewDb
) -> None:
    target = review_db.articles[1]
    answer = _post(
        client,
        {
            "article_id": target.article_id,
            "topic_id": target.topic_id,
            "verdict": "relevant",
            "note": " checked ",
        },
    )
    assert answer.status_code == 200, answer.text
    review_id = answer.json()["review_id"]
    with store.connect(review_db.path, read_only=True) as con:
        row = con.execute(
            "SELECT article_id, topic_id, verdict, reviewer, score, threshold, note FROM reviews WHERE review_id = ?",
            [review_id],
        ).fetchone()
        status = con.execute(
            "SELECT status FROM matches WHERE article_id = ? AND topic_id = ?",
            [target.article_id, target.topic_id],
        ).fetchone()
    assert row == (target.article_id, "t2", "relevant", "ana", target.score, target.threshold, "checked")
    assert status == ("relevant",)
    assert target.article_id not in _queue_ids(client.get("/").text)
    queue = client.get("/api/queue").json()
    assert [i["article_id"] for i in queue["items"]] == [
        a for a in review_db.queue_order if a != target.article_id
    ]
    assert queue["count"] == 4


def test_api_queue_filters_and_validates(client: TestClient, review_db: ReviewDb) -> None:
    items = client.get("/api/queue", params={"topic": "t1", "limit": "2"}).json()["items"]
    assert [i["topic_id"] for i in items] == ["t1", "t1"]
    assert items[0]["article_id"] == review_db.queue_order[0]
    assert items[0]["published_at"].startswith(str(review_db.articles[4].published))
    bad = client.get("/api/queue", params={"limit": "many"})
    assert bad.status_code == 400 and "limit" in bad.json()["error"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"verdict": "maybe"}, "verdict must be one of"),
        ({"verdict": None}, "verdict must be one of"),
        ({"article_id": "0000000000000000"}, "no match of article"),
        ({"topic_id": "t9"}, "no match of article"),
        ({"article_id": " "}, "must not be empty"),
        ({"article_id": 7}, "article_id must be"),
        ({"note": "x" * 2001}, "note must be"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_api_rejects_bad_verdicts_and_unknown_matches(
    client: TestClient, review_db: ReviewDb, change: dict[str, object], message: str
) -> None:
    target = review_db.articles[0]
    body = {"article_id": target.article_id, "topic_id": target.topic_id, "verdict": "relevant", **change}
    answer = _post(client, body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    with store.connect(review_db.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone() == (0,)


def test_api_rejects_bodies_that_are_not_json_objects(client: TestClient) -> None:
    headers = {**UI, "Content-Type": "application/json"}
    assert client.post("/api/review", content=b"{not json", headers=headers).status_code == 400
    assert client.post("/api/review", content=b"[1, 2]", headers=headers).status_code == 400
    plain = client.post("/api/review", content=b"{}", headers={**UI, "Content-Type": "text/plain"})
    assert plain.status_code == 415
    huge = client.post("/api/review", content=b'{"note": "' + b"x" * 20_000 + b'"}', headers=headers)
    assert huge.status_code == 413


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Monitor-UI": "0"},
        {"X-Monitor-UI": "1", "Origin": "http://evil.example"},
        {"X-Monitor-UI": "1", "Origin": "http://127.0.0.1:9999"},
        {"X-Monitor-UI": "1", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_api_refuses_writes_from_elsewhere(
    client: TestClient, review_db: ReviewDb, headers: dict[str, str]
) -> None:
    target = review_db.articles[0]
    body = {"article_id": target.article_id, "topic_id": target.topic_id, "verdict": "relevant"}
    assert _post(client, body, headers).status_code == 403
    with store.connect(review_db.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone() == (0,)
    # The same request from the page's own origin is accepted.
    assert _post(client, body, {**UI, "Origin": BASE, "Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_requests_to_a_foreign_host_are_refused(review_db: ReviewDb) -> None:
    app = create_app(Settings(db=review_db.path))
    assert TestClient(app, base_url="http://evil.example").get("/").status_code == 403
    assert TestClient(app, base_url="http://localhost:8780").get("/").status_code == 200
    assert TestClient(app, base_url="http://[::1]:8780").get("/static/style.css").status_code == 200
    assert is_loopback("127.0.0.2") and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.10") and not is_loopback("localhost.evil.example")


def test_busy_writer_lease_answers_503_and_keeps_the_match(review_db: ReviewDb) -> None:
    target = review_db.articles[0]
    fd = os.open(lease_path(review_db.path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another writer (an ingest run) holds the lease
        with _client(review_db, db_lock_timeout_s=0.3) as client:
            answer = _post(client, {"article_id": target.article_id, "topic_id": "t1", "verdict": "relevant"})
    finally:
        os.close(fd)
    assert answer.status_code == 503
    assert "is being written by" in answer.json()["error"]
    with store.connect(review_db.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone() == (0,)
        assert con.execute(
            "SELECT status FROM matches WHERE article_id = ?", [target.article_id]
        ).fetchone() == ("new",)


def test_story_page_shows_first_outlet_other_carriers_and_timeline(
    client: TestClient, review_db: ReviewDb
) -> None:
    page = client.get(f"/story/{review_db.story_id}")
    assert page.status_code == 200
    html = page.text
    assert '<strong class="first-outlet">Wire</strong>' in html
    also = html.split('id="also-title"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'<span class="carrier-name">([^<]+)</span>', also) == ["Daily Two", "Mirror Three"]
    timeline = html.split('id="timeline-title"', 1)[1].split("</section>", 1)[0]
    assert timeline.index("Flood warning issued") < timeline.index("Valley flood warning (update)")
    assert "carried by 3 outlets" in html
    matches = html.split('id="matches-title"', 1)[1]
    assert matches.count("<tr>") == 3  # the header row and the two articles' matches
    assert "0.640" in matches and "0.610" in matches
    assert client.get("/story/nothing-here").status_code == 404


def test_chart_endpoint_draws_one_series_per_topic(client: TestClient, review_db: ReviewDb) -> None:
    answer = client.get("/chart/coverage.svg", params={"days": "7"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(answer.text)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    series = {
        g.get("data-topic"): g.get("data-counts") for g in root.iterfind(".//svg:g[@class='series']", ns)
    }
    # Topic one: one article two days ago, two yesterday; harbour strikes: two today (one by its match time).
    assert series == {"Topic one": "0,0,0,0,1,2,0", "Harbour strikes": "0,0,0,0,0,0,2"}
    assert client.get("/chart/coverage.svg", params={"days": "0"}).status_code == 400
    # The queue page embeds the same chart (last 30 days).
    assert 'class="coverage-chart"' in client.get("/").text


def test_chart_counts_follow_the_clock(review_db: ReviewDb) -> None:
    later = create_app(Settings(db=review_db.path), clock=lambda: datetime.now(UTC) + timedelta(days=40))
    svg = TestClient(later, base_url=BASE).get("/chart/coverage.svg").text
    counts = re.findall(r'data-counts="([^"]+)"', svg)
    assert len(counts) == 2 and all(set(c.split(",")) == {"0"} for c in counts)


def test_static_assets_are_served_with_their_types(client: TestClient) -> None:
    js = client.get("/static/review.js")
    assert js.status_code == 200 and js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "X-Monitor-UI" in js.text
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
    assert js.headers["x-content-type-options"] == "nosniff"
    for missing in ("/static/nope.js", "/static/..%2Fapp.py", "/static/../app.py"):
        assert client.get(missing).status_code == 404, missing
    # The page loads only the monitor's own assets: no CDN.
    assert not re.search(r'(src|href)="(https?:)?//(?!127\.0\.0\.1:9/)', client.get("/").text)


def test_missing_database_gives_a_helpful_page(tmp_path: Path) -> None:
    app = create_app(Settings(db=tmp_path / "none.duckdb"))
    client = TestClient(app, base_url=BASE)
    page = client.get("/")
    assert page.status_code == 503
    assert f"No database yet at {tmp_path / 'none.duckdb'}" in page.text
    assert "monitor demo" in page.text and "monitor run" in page.text
    api = client.get("/api/queue")
    assert api.status_code == 503 and "No database yet" in api.json()["error"]
    assert not (tmp_path / "none.duckdb").exists()


def test_cli_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from monitor.cli import main

    assert main(["ui", "--db", str(tmp_path / "m.duckdb"), "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err
