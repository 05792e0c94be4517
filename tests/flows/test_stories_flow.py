"""End to end: publication dates, syndicated copies grouped into one story, exact copies as aliases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from flows.ingest import ingest
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SAMPLE = REPO / "monitor/demo/sample_site/articles"


def page(slug: str, base: str, headline: str | None = None, extra: str = "", date: str | None = None) -> str:
    html = (SAMPLE / f"{slug}.html").read_text(encoding="utf-8").replace("{{BASE}}", base)
    html = re.sub(
        r'<link rel="canonical"[^>]*>|<meta property="og:url"[^>]*>', "", html
    )  # each copy at its own URL
    if headline:
        html = re.sub(r"<h1([^>]*)>.*?</h1>", rf"<h1\1>{headline}</h1>", html, count=1, flags=re.S)
        html = re.sub(r"<title>.*?</title>", f"<title>{headline}</title>", html, count=1, flags=re.S)
    if extra:
        html = html.replace("</article>", f"<p>{extra}</p></article>", 1)
    if date:
        html = re.sub(r'(property="article:published_time" content=")[^"]+', rf"\g<1>{date}", html)
    return html


def rss(title: str, base: str, items: list[tuple[str, str | None]]) -> str:
    body = "".join(
        f"<item><title>{path}</title><link>{base}{path}</link>{f'<pubDate>{d}</pubDate>' if d else ''}</item>"
        for path, d in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'


def test_dates_stories_and_aliases_end_to_end(tmp_path: Path, prefect_harness: None, scripted_server) -> None:
    s, base = scripted_server, scripted_server.base
    html = "text/html; charset=utf-8"
    s.add("/wire/vienna.html", 200, page("vienna-talks-resume-jcpoa", base), Content_Type=html)
    s.add("/daily/talks-stall.html", 200, page(
        "vienna-talks-resume-jcpoa", base, headline="Iran talks: envoys dig in over sanctions",
        extra="Copyright Daily Two. Sign up for our morning newsletter for more world news.",
    ), Content_Type=html)  # fmt: skip
    s.add("/mirror/vienna-copy.html", 200, page("vienna-talks-resume-jcpoa", base), Content_Type=html)
    s.add("/wire/no-feed-date.html", 200, page("harbourside-united-late-winner", base), Content_Type=html)
    s.add("/wire/future.html", 200, page("minho-floods-evacuations", base, date="2099-01-01T10:00:00Z"),
          Content_Type=html)  # fmt: skip
    feeds = {
        "Wire One": s.add("/wire.xml", 200, rss("Wire One", base, [
            ("/wire/vienna.html", "Fri, 20 Nov 2026 09:15:00 GMT"),
            ("/wire/no-feed-date.html", None),
            ("/wire/future.html", None),
        ]), Content_Type="application/rss+xml"),
        "Daily Two": s.add("/daily.xml", 200, rss("Daily Two", base, [
            ("/daily/talks-stall.html?utm_source=rss", "Fri, 20 Nov 2026 11:00:00 GMT"),
        ]), Content_Type="application/rss+xml"),
        "Mirror Three": s.add("/mirror.xml", 200, rss("Mirror Three", base, [
            ("/mirror/vienna-copy.html", "Fri, 20 Nov 2026 12:00:00 GMT"),
        ]), Content_Type="application/rss+xml"),
    }  # fmt: skip
    (tmp_path / "feeds.yaml").write_text(
        yaml.safe_dump({"feeds": [{"name": n, "url": u} for n, u in feeds.items()]}), encoding="utf-8"
    )
    started = datetime.now(UTC)
    summary = ingest(
        db=str(tmp_path / "m.duckdb"), feeds=str(tmp_path / "feeds.yaml"), topics=str(REPO / "topics.yaml"),
        alerts_file=str(tmp_path / "alerts.jsonl"), fetch_allow=["127.0.0.1"],
    )  # fmt: skip
    assert summary.counts["feeds_ok"] == 3
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        articles = {
            url.rsplit("/", 1)[-1]: (published, method, story)
            for url, published, method, story in con.execute(
                "SELECT url, published_at, date_method, story_id FROM articles"
            ).fetchall()
        }
        aliases = con.execute("SELECT url, reason FROM article_aliases").fetchall()
        alerts = con.execute("SELECT count(*) FROM alerts WHERE topic_id = 'jcpoa-talks'").fetchone()[0]
        summary_rows = con.execute(
            "SELECT n_outlets, len(member_articles), first_outlet FROM story_summary ORDER BY n_outlets DESC"
        ).fetchall()

    # Dates: the feed's date when it has one, else the page's, never a future one.
    assert articles["vienna.html"][:2] == (datetime(2026, 11, 20, 9, 15, tzinfo=UTC), "feed")
    assert articles["no-feed-date.html"][1] == "page-metadata"
    assert articles["no-feed-date.html"][0].year == 2026
    future_date, future_method = articles["future.html"][:2]
    assert future_method == "first-seen"
    assert started - timedelta(seconds=5) <= future_date <= datetime.now(UTC)

    # The exact copy is an alias, not an article; the edited copy is an article in the same story.
    assert "vienna-copy.html" not in articles
    assert [(u.rsplit("/", 1)[-1], r) for u, r in aliases] == [("vienna-copy.html", "same-text")]
    assert "talks-stall.html?utm_source=rss" in articles or "talks-stall.html" in str(articles)
    stall = next(v for k, v in articles.items() if k.startswith("talks-stall"))
    assert stall[2] == articles["vienna.html"][2]
    assert len({v[2] for v in articles.values()}) == 3

    # The story table names its first outlet and counts every outlet that carried it.
    assert summary_rows[0] == (3, 2, "Wire One")

    # One alert for the story, naming the other outlets that carried it.
    assert alerts == 1
    records = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    talks = [r for r in records if r["topic_id"] == "jcpoa-talks"]
    assert len(talks) == 1
    assert sorted(talks[0]["also_carried_by"]) == ["Daily Two", "Mirror Three"]
