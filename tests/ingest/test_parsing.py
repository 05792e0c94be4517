"""Feed-body parsing (no network: bodies are written inline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml

from monitor.ingest.dates import EARLIEST_DATE, plausible_date
from monitor.ingest.parsing import clean_text, parse_feed
from monitor.models import Feed, FetchResult, FetchStatus
from tests.conftest import REPO

SAMPLE_SITE = REPO / "monitor" / "demo" / "sample_site"
SAMPLE_BASE = "http://127.0.0.1:9"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FEED = Feed(name="Test Feed", url="https://news.example.com/feed.xml")


def fetched(
    body: bytes,
    content_type: str | None = "application/rss+xml",
    final_url: str = "https://news.example.com/feeds/world.xml",
) -> FetchResult:
    return FetchResult(
        url=FEED.url,
        final_url=final_url,
        status=FetchStatus.OK,
        http_status=200,
        content_type=content_type,
        body=body,
    )


# ------------------------------------------------------------------ parse_feed

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>Example World</title>
    <link>https://news.example.com/</link>
    <description>Test channel</description>
    <item>
      <title>Talks &lt;b&gt;resume&lt;/b&gt; in   Vienna</title>
      <link>https://News.Example.com:443/2026/11/talks?utm_source=rss&amp;utm_medium=feed&amp;id=7#top</link>
      <pubDate>Tue, 24 Nov 2026 15:30:00 +0100</pubDate>
      <description>&lt;p&gt;Negotiators &lt;em&gt;met&lt;/em&gt; again&amp;nbsp;on Tuesday.&lt;/p&gt;</description>
    </item>
    <item>
      <title>Relative link</title>
      <link>../articles/relative.html</link>
      <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate>
      <description>Plain summary.</description>
    </item>
    <item>
      <title>Same story again with other tracking</title>
      <link>https://news.example.com/2026/11/talks?id=7&amp;fbclid=abc</link>
    </item>
    <item>
      <title>From the future</title>
      <link>https://news.example.com/future</link>
      <pubDate>Thu, 24 Nov 2099 10:00:00 GMT</pubDate>
    </item>
    <item>
      <title>From the past</title>
      <link>https://news.example.com/past</link>
      <pubDate>Fri, 24 Nov 1989 10:00:00 GMT</pubDate>
    </item>
    <item>
      <title>No link at all</title>
    </item>
    <item>
      <title>Script link</title>
      <link>javascript:alert(1)</link>
    </item>
  </channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Example Defence</title>
  <id>tag:example.com,2026:feed</id>
  <updated>2026-11-26T10:00:00Z</updated>
  <entry>
    <title type="html">Missile &lt;em&gt;test&lt;/em&gt; reported</title>
    <link rel="alternate" type="text/html" href="/defence/missile-test"/>
    <id>tag:example.com,2026:1</id>
    <published>2026-11-26T10:00:00+02:00</published>
    <updated>2026-11-26T12:00:00+02:00</updated>
    <summary type="html">&lt;p&gt;Officials &lt;a href="x"&gt;said&lt;/a&gt; so.&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title>Only updated</title>
    <link rel="enclosure" type="audio/mpeg" href="https://cdn.example.com/a.mp3"/>
    <link rel="alternate" type="text/html" href="https://other.example.org/story/2?utm_campaign=x"/>
    <id>tag:example.com,2026:2</id>
    <updated>2026-11-25T09:15:00Z</updated>
  </entry>
</feed>
"""


def test_parse_rss() -> None:
    poll = parse_feed(FEED, fetched(RSS), now=NOW)
    assert poll.status is FetchStatus.OK
    assert poll.parse_error is None
    assert poll.error is None
    assert not poll.bozo
    by_title = {e.title: e for e in poll.entries}
    assert list(by_title) == ["Talks resume in Vienna", "Relative link", "From the future", "From the past"]

    first = by_title["Talks resume in Vienna"]
    assert first.canonical_url == "https://news.example.com/2026/11/talks?id=7"
    assert first.url.startswith("https://News.Example.com:443/2026/11/talks?")
    assert first.published_at == datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    assert first.published_at.utcoffset() == timedelta(0)
    assert first.summary == "Negotiators met again on Tuesday."
    assert first.source_id == FEED.source_id
    assert len(first.article_id) == 16

    relative = by_title["Relative link"]
    assert relative.url == "https://news.example.com/articles/relative.html"
    assert relative.canonical_url == "https://news.example.com/articles/relative.html"
    assert relative.summary == "Plain summary."

    assert by_title["From the future"].published_at is None
    assert by_title["From the past"].published_at is None


def test_duplicate_links_collapse_to_first() -> None:
    poll = parse_feed(FEED, fetched(RSS), now=NOW)
    canon = [e.canonical_url for e in poll.entries]
    assert len(canon) == len(set(canon))
    assert canon.count("https://news.example.com/2026/11/talks?id=7") == 1
    assert "Same story again with other tracking" not in {e.title for e in poll.entries}


def test_parse_atom() -> None:
    poll = parse_feed(
        FEED, fetched(ATOM, "application/atom+xml", "https://example.com/feeds/d.atom"), now=NOW
    )
    assert poll.status is FetchStatus.OK
    assert [e.title for e in poll.entries] == ["Missile test reported", "Only updated"]
    first, second = poll.entries
    assert first.url == "https://example.com/defence/missile-test"
    assert first.published_at == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert first.summary == "Officials said so."
    assert second.canonical_url == "https://other.example.org/story/2"
    assert second.published_at == datetime(2026, 11, 25, 9, 15, tzinfo=UTC)
    assert second.summary is None


def test_relative_links_resolve_against_final_url_after_redirect() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
    <item><title>A</title><link>story/a.html</link></item>
    <item><title>B</title><link>/root/b.html</link></item>
    </channel></rss>"""
    poll = parse_feed(FEED, fetched(body, final_url="https://mirror.example.net/section/rss.xml"), now=NOW)
    assert [e.url for e in poll.entries] == [
        "https://mirror.example.net/section/story/a.html",
        "https://mirror.example.net/root/b.html",
    ]


def test_future_date_allows_small_clock_skew() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
    <item><title>A</title><link>https://e.example/a</link><pubDate>Tue, 01 Dec 2026 13:00:00 GMT</pubDate></item>
    <item><title>B</title><link>https://e.example/b</link><pubDate>Tue, 01 Dec 2026 18:00:00 GMT</pubDate></item>
    </channel></rss>"""
    a, b = parse_feed(FEED, fetched(body), now=NOW).entries
    assert a.published_at == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    assert b.published_at is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not xml at all", id="plain-text"),
        pytest.param(
            b"<!DOCTYPE html><html><head><title>Home</title></head>"
            b"<body><h1>Welcome</h1><p>This is a web page, not a feed.</p></body></html>",
            id="html-page",
        ),
        pytest.param(b"\x00\xff" * 200, id="binary"),
        pytest.param(RSS[: RSS.index(b"<item>") + 40], id="truncated-in-first-item"),
        pytest.param(RSS[:70], id="truncated-in-header"),
    ],
)
def test_malformed_bodies_are_permanent_parse_errors(body: bytes) -> None:
    poll = parse_feed(FEED, fetched(body), now=NOW)
    assert poll.parse_error
    assert poll.status is FetchStatus.PERMANENT
    assert poll.error == poll.parse_error
    assert poll.entries == ()


def test_valid_empty_feed_is_not_an_error() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title>
    <link>https://e.example/</link><description>Nothing yet</description></channel></rss>"""
    poll = parse_feed(FEED, fetched(body), now=NOW)
    assert poll.parse_error is None
    assert poll.status is FetchStatus.OK
    assert poll.entries == ()


def test_bozo_but_recoverable_feed_keeps_entries() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>
    <item><title>Caf&eacute; owners&nbsp;protest</title><link>https://e.example/cafe</link></item>
    <item><title>AT&T wins contract</title><link>https://e.example/att?a=1&b=2</link></item>
    </channel></rss>"""
    poll = parse_feed(FEED, fetched(body), now=NOW)
    assert poll.bozo is True
    assert poll.parse_error is None
    assert poll.status is FetchStatus.OK
    assert len(poll.entries) == 2
    cafe, att = poll.entries
    assert cafe.title == "Café owners protest"
    assert att.title is not None
    assert att.title.startswith("AT&T")
    assert att.canonical_url == "https://e.example/att?a=1&b=2"


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml", None])
def test_windows_1252_feed_with_declared_encoding(content_type: str | None) -> None:
    text = (
        '<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>\u201cCaf\u00e9 society\u201d returns \u2014 for now</title>"
        "<link>https://e.example/cafe</link>"
        "<description>\u2018Cr\u00e8me br\u00fbl\u00e9e\u2019 costs \u20ac5 in S\u00e3o Paulo</description></item>"
        "</channel></rss>"
    )
    body = text.encode("cp1252")
    assert b"\x93" in body
    assert b"\xe9" in body
    (entry,) = parse_feed(FEED, fetched(body, content_type), now=NOW).entries
    assert entry.title == "\u201cCaf\u00e9 society\u201d returns \u2014 for now"
    assert entry.summary == "\u2018Cr\u00e8me br\u00fbl\u00e9e\u2019 costs \u20ac5 in S\u00e3o Paulo"


def _manifest_counts() -> dict[str, int]:
    manifest = yaml.safe_load((SAMPLE_SITE / "manifest.yaml").read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for article in manifest["articles"]:
        for feed_file in article["feed"]:
            counts[feed_file] = counts.get(feed_file, 0) + 1
    return counts


@pytest.mark.parametrize("feed_file", sorted(p.name for p in (SAMPLE_SITE / "feeds").iterdir()))
def test_sample_site_feeds_parse(feed_file: str) -> None:
    body = (SAMPLE_SITE / "feeds" / feed_file).read_text(encoding="utf-8").replace("{{BASE}}", SAMPLE_BASE)
    content_type = "application/atom+xml" if feed_file.endswith(".atom") else "application/rss+xml"
    final_url = f"{SAMPLE_BASE}/feeds/{feed_file}"
    feed = Feed(name=feed_file, url=final_url)
    poll = parse_feed(feed, fetched(body.encode("utf-8"), content_type, final_url), now=NOW)
    assert poll.parse_error is None
    assert not poll.bozo
    assert len(poll.entries) == _manifest_counts()[feed_file]
    manifest = yaml.safe_load((SAMPLE_SITE / "manifest.yaml").read_text(encoding="utf-8"))
    expected = {
        f"{SAMPLE_BASE}/articles/{a['slug']}.html" for a in manifest["articles"] if feed_file in a["feed"]
    }
    assert {e.canonical_url for e in poll.entries} == expected
    for entry in poll.entries:
        assert entry.title
        assert entry.summary
        assert entry.published_at is not None
        assert entry.published_at.tzinfo is not None
        assert entry.published_at.utcoffset() == timedelta(0)
        assert datetime(2026, 11, 1, tzinfo=UTC) < entry.published_at < NOW


def test_sample_feeds_agree_on_shared_article_ids() -> None:
    ids: dict[str, set[str]] = {}
    for path in sorted((SAMPLE_SITE / "feeds").iterdir()):
        body = path.read_text(encoding="utf-8").replace("{{BASE}}", SAMPLE_BASE).encode()
        poll = parse_feed(Feed(path.name, f"{SAMPLE_BASE}/feeds/{path.name}"), fetched(body), now=NOW)
        ids[path.name] = {e.article_id for e in poll.entries}
    # the gulf feed links this story with utm_* parameters; it must still be the same article
    shared = ids["gulf.xml"] & ids["defense.atom"]
    assert len(shared) == 1


# ------------------------------------------------------------------ helpers


def test_plausible_date() -> None:
    assert plausible_date(datetime(2026, 11, 30, tzinfo=UTC), NOW)
    assert plausible_date(EARLIEST_DATE, NOW)
    assert not plausible_date(EARLIEST_DATE - timedelta(seconds=1), NOW)
    assert not plausible_date(datetime(1970, 1, 1, tzinfo=UTC), NOW)
    assert plausible_date(NOW, NOW)
    assert plausible_date(NOW + timedelta(hours=2), NOW)
    assert not plausible_date(NOW + timedelta(hours=2, seconds=1), NOW)
    assert not plausible_date(datetime(2099, 1, 1, tzinfo=UTC), NOW)
    # offsets are compared as instants: 22:00 in Tokyo is 13:00 UTC, within the slack
    tokyo = timezone(timedelta(hours=9))
    assert plausible_date(datetime(2026, 12, 1, 22, 0, tzinfo=tokyo), NOW)
    assert not plausible_date(datetime(2026, 12, 2, 5, 0, tzinfo=tokyo) + timedelta(hours=9), NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Plain title", "Plain title"),
        ("  lots   of\n\twhitespace  ", "lots of whitespace"),
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("Tom &amp; Jerry&nbsp;&#8212; &quot;hi&quot;", 'Tom & Jerry \u2014 "hi"'),
        ("<p>line one</p><p>line two</p>", "line one line two"),
        ('<a href="https://e.example/">link</a> text<br/>more', "link text more"),
        ("", None),
        ("   ", None),
        ("<p> </p>", None),
        (None, None),
        (42, None),
    ],
)
def test_clean_text(value: object, expected: str | None) -> None:
    assert clean_text(value) == expected
