"""End-to-end ingest flow under a Prefect test harness, against local servers, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.ingest import ingest
from monitor.demo import FEED_NAMES, load_manifest
from monitor.pipeline import AllFeedsFailed
from tests.conftest import REPO
from tests.rows import SAMPLE_ARTICLES, SAMPLE_FEEDS

pytestmark = pytest.mark.slow

CONTENT_TABLES = ("articles", "passages", "sightings", "matches", "alerts", "page_failures")


def write_feeds(path: Path, feeds: list[tuple[str, str]]) -> Path:
    path.write_text(yaml.safe_dump({"feeds": [{"name": n, "url": u} for n, u in feeds]}), encoding="utf-8")
    return path


def sample_feeds(base: str) -> list[tuple[str, str]]:
    return [(name, f"{base}/feeds/{file}") for file, name in FEED_NAMES.items()]


def run(tmp_path: Path, feeds: Path, poll_all: bool = False) -> object:
    return ingest(
        db=str(tmp_path / "monitor.duckdb"),
        feeds=str(feeds),
        topics=str(REPO / "topics.yaml"),
        alerts_file=str(tmp_path / "alerts.jsonl"),
        fetch_allow=["127.0.0.1"],
        poll_all=poll_all,
    )


def table_counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in CONTENT_TABLES}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None, sample_site: str):
    """One ingest of the sample site, then a second run over the unchanged feeds."""
    tmp = tmp_path_factory.mktemp("sample-run")
    feeds = write_feeds(tmp / "feeds.yaml", sample_feeds(sample_site))
    first = run(tmp, feeds)
    after_first = table_counts(tmp / "monitor.duckdb")
    alert_lines_first = (tmp / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    second = run(tmp, feeds, poll_all=True)  # poll the unchanged feeds again, due or not
    return tmp, first, after_first, alert_lines_first, second


def test_sample_site_on_topic_flagged_off_topic_not(sample_run) -> None:
    tmp, first, *_ = sample_run
    manifest = {a["slug"]: a for a in load_manifest()}
    with duckdb.connect(str(tmp / "monitor.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT url FROM articles").fetchall()
        flagged = con.execute(
            "SELECT DISTINCT a.canonical_url, m.topic_id FROM matches m JOIN articles a USING (article_id)"
        ).fetchall()
    assert len(stored) == len(manifest)
    flagged_slugs: dict[str, set[str]] = {}
    for url, topic in flagged:
        flagged_slugs.setdefault(url.rsplit("/", 1)[-1].removesuffix(".html"), set()).add(topic)
    expected_topic = {"missiles": "iran-missiles", "nuclear-talks": "jcpoa-talks"}
    for slug, item in manifest.items():
        if item["topic"] == "none":
            assert slug not in flagged_slugs, f"off-topic article {slug} was flagged"
        else:
            # ``flagged_as``: the topics a known miss is measured to be flagged for instead
            for topic in item.get("flagged_as") or [expected_topic[item["topic"]]]:
                assert topic in flagged_slugs.get(slug, set()), f"{slug} not flagged as {topic}"
    assert first.counts["articles_stored"] == SAMPLE_ARTICLES
    assert first.counts["feeds_ok"] == SAMPLE_FEEDS


def test_matches_record_their_evidence(sample_run) -> None:
    tmp, *_ = sample_run
    with duckdb.connect(str(tmp / "monitor.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT m.score, m.threshold, m.best_passage, m.exemplar, m.model, m.status, a.language"
            " FROM matches m JOIN articles a USING (article_id)"
        ).fetchall()
        dims = con.execute("SELECT DISTINCT array_length(embedding) FROM passages").fetchall()
        passage_models = con.execute(
            "SELECT DISTINCT a.language = 'en', p.model FROM passages p JOIN articles a USING (article_id)"
        ).fetchall()
    assert rows
    for score, threshold, passage, exemplar, model, status, language in rows:
        assert score >= threshold
        assert passage and exemplar
        # Routed by language: English to MiniLM, the rest to the multilingual encoder.
        assert model == ("all-MiniLM-L6-v2-openvino" if language == "en" else "multilingual-e5-small"), (
            language
        )
        assert status == "new"
    assert {language for *_, language in rows} > {"en"}  # non-English coverage was flagged too
    assert sorted(passage_models) == [(False, "multilingual-e5-small"), (True, "all-MiniLM-L6-v2-openvino")]
    assert dims == [(384,)]


def test_one_alert_per_match_written_to_sink(sample_run) -> None:
    _, first, after_first, alert_lines, _ = sample_run
    records = [json.loads(line) for line in alert_lines]
    assert len(records) == after_first["matches"] == after_first["alerts"] == first.counts["alerts_delivered"]
    assert len({r["alert_id"] for r in records}) == len(records)
    assert all(r["url"].startswith("http://127.0.0.1") and r["passage"] for r in records)


def test_second_run_adds_no_rows_and_no_alerts(sample_run) -> None:
    tmp, _, after_first, alert_lines_first, second = sample_run
    assert table_counts(tmp / "monitor.duckdb") == after_first
    assert (tmp / "alerts.jsonl").read_text(encoding="utf-8").splitlines() == alert_lines_first
    assert second.counts["entries_new"] == 0
    assert second.counts["feeds_not_modified"] == SAMPLE_FEEDS  # same bytes as last time: not parsed again
    assert second.counts.get("alerts_new", 0) == 0
    assert second.counts["alerts_delivered"] == 0
    with duckdb.connect(str(tmp / "monitor.duckdb"), read_only=True) as con:
        runs = con.execute(
            "SELECT status, entries_new, articles_stored FROM runs ORDER BY started_at"
        ).fetchall()
    assert [r[0] for r in runs] == ["completed", "completed"]
    assert runs[0][2] == SAMPLE_ARTICLES and runs[1][1:] == (0, 0)


def test_failing_feeds_are_recorded_and_the_run_carries_on(
    tmp_path: Path, prefect_harness: None, sample_site: str, scripted_server, closed_port: int
) -> None:
    broken = scripted_server.add("/broken.xml", 500, "oops", Content_Type="text/plain")
    malformed = scripted_server.add("/malformed.xml", 200, "<html><body>not a feed", Content_Type="text/xml")
    missing = scripted_server.add("/gone.xml", 404)
    feeds = write_feeds(
        tmp_path / "feeds.yaml",
        [
            ("Good", f"{sample_site}/feeds/world.xml"),
            ("Closed port", f"http://127.0.0.1:{closed_port}/feed.xml"),
            ("Server error", broken),
            ("Malformed", malformed),
            ("Missing", missing),
        ],
    )
    summary = run(tmp_path, feeds)
    assert summary.counts["feeds_ok"] == 1
    assert summary.counts["feeds_failed"] == 4
    assert summary.counts["articles_stored"] == 7
    with duckdb.connect(str(tmp_path / "monitor.duckdb"), read_only=True) as con:
        status = dict(
            (name, (st, err, fails))
            for name, st, err, fails in con.execute(
                "SELECT name, last_status, last_error, consecutive_failures FROM sources"
            ).fetchall()
        )
    assert status["Good"][0] == "ok"
    assert status["Closed port"][0] == "temporary" and "Connect" in status["Closed port"][1]
    assert status["Server error"][:2] == ("temporary", "HTTP 500")
    assert status["Malformed"][0] == "permanent" and "not a feed" in status["Malformed"][1]
    assert status["Missing"][:2] == ("permanent", "HTTP 404")
    assert all(fails == 1 for name, (_, _, fails) in status.items() if name != "Good")


def test_every_feed_failing_fails_the_flow_with_a_clear_message(
    tmp_path: Path, prefect_harness: None, scripted_server, closed_port: int
) -> None:
    feeds = write_feeds(
        tmp_path / "feeds.yaml",
        [
            ("Closed port", f"http://127.0.0.1:{closed_port}/feed.xml"),
            ("Server error", scripted_server.add("/broken.xml", 503, "", Retry_After="120")),
        ],
    )
    with pytest.raises(AllFeedsFailed, match=r"all 2 feeds failed: Closed port: .*Server error: HTTP 503"):
        run(tmp_path, feeds)
    state = ingest(
        db=str(tmp_path / "monitor.duckdb"),
        feeds=str(feeds),
        topics=str(REPO / "topics.yaml"),
        alerts_file=str(tmp_path / "alerts.jsonl"),
        fetch_allow=["127.0.0.1"],
        poll_all=True,  # the failed feeds are backing off, so not due by themselves
        return_state=True,
    )
    assert state.is_failed()
    with duckdb.connect(str(tmp_path / "monitor.duckdb"), read_only=True) as con:
        runs = con.execute("SELECT status, error FROM runs").fetchall()
    assert [r[0] for r in runs] == ["failed", "failed"]
    assert all("all 2 feeds failed" in r[1] for r in runs)


def test_temporary_page_failure_is_retried_next_run_permanent_is_not(
    tmp_path: Path, prefect_harness: None, sample_site: str, scripted_server
) -> None:
    page = (REPO / "monitor/demo/sample_site/articles/vienna-talks-resume-jcpoa.html").read_text(
        encoding="utf-8"
    )
    page = page.replace("{{BASE}}", scripted_server.base)
    calls = {"n": 0}

    def flaky(handler) -> None:
        calls["n"] += 1
        status, body = (503, b"") if calls["n"] == 1 else (200, page.encode("utf-8"))
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    scripted_server.add_handler("/articles/flaky.html", flaky)
    scripted_server.add("/articles/gone.html", 410)
    rss = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>{scripted_server.base}/</link>
      <item><title>Flaky</title><link>{scripted_server.base}/articles/flaky.html</link></item>
      <item><title>Gone</title><link>{scripted_server.base}/articles/gone.html</link></item>
    </channel></rss>"""
    feed_url = scripted_server.add("/feed.xml", 200, rss, Content_Type="application/rss+xml")
    feeds = write_feeds(tmp_path / "feeds.yaml", [("Flaky site", feed_url)])

    first = run(tmp_path, feeds)
    assert first.counts["articles_stored"] == 0 and first.counts["pages_failed"] == 2
    second = run(tmp_path, feeds)  # the feed is not due again yet; the failed page is
    assert second.counts["feeds_total"] == 0
    assert second.counts["entries_new"] == 1  # only the temporary failure is retried
    assert second.counts["articles_stored"] == 1
    with duckdb.connect(str(tmp_path / "monitor.duckdb"), read_only=True) as con:
        failures = con.execute("SELECT url, status, attempts FROM page_failures").fetchall()
    assert failures == [(f"{scripted_server.base}/articles/gone.html", "permanent", 1)]
    assert scripted_server.requests.count("/articles/gone.html") == 1


def test_alert_urls_from_a_prefect_secret_block_and_the_run_artifact(
    tmp_path: Path, prefect_harness: None, sample_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client

    from flows.ingest import settings_with_secrets
    from tests.alerts.receivers import WebhookReceiver

    with WebhookReceiver() as receiver:
        Secret(value=f"json://127.0.0.1:{receiver.port}/from-secret").save(
            "monitor-alert-urls", overwrite=True
        )
        monkeypatch.setenv("MONITOR_ALERT_URLS_SECRET", "monitor-alert-urls")
        monkeypatch.setenv("MONITOR_ALERT_URLS", "json://127.0.0.1:9/from-env")
        settings = settings_with_secrets()
        assert settings.alert_urls == [
            "json://127.0.0.1:9/from-env",
            f"json://127.0.0.1:{receiver.port}/from-secret",
        ]
        monkeypatch.delenv("MONITOR_ALERT_URLS")
        feeds = write_feeds(tmp_path / "feeds.yaml", [("World", f"{sample_site}/feeds/world.xml")])
        summary = run(tmp_path, feeds)
    assert summary.counts["matches_new"] >= 2
    assert len(set(receiver.keys())) == len(receiver.keys()) == summary.counts["matches_new"]
    assert {r.path for r in receiver.requests} == {"/from-secret"}

    async def latest_artifact() -> str:
        async with get_client() as client:
            artifacts = await client.read_latest_artifacts()
        return next(a.data for a in artifacts if a.key == "ingest-new-matches")

    markdown = asyncio.run(latest_artifact())
    assert f"# Ingest run {summary.run_id}" in markdown
    assert "## Iran's ballistic-missile programme (`iran-missiles`)" in markdown
    assert f"{sample_site}/articles/" in markdown
