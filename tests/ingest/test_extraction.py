"""Article extraction on the sample site's pages, date logic, fallbacks, decoding, language."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest

from monitor.demo import load_manifest
from monitor.ingest.extraction import (
    MIN_TEXT_CHARS,
    ExtractionFailed,
    decode_html,
    detect_language,
    extract_article,
    extract_batch,
)
from monitor.ingest.language import words_of
from monitor.ingest.urls import canonicalize
from monitor.models import Entry, FetchResult, FetchStatus, PageFetch

REPO = Path(__file__).resolve().parent.parent.parent
ARTICLES = REPO / "monitor" / "demo" / "sample_site" / "articles"
BASE = "http://127.0.0.1:9"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FEED_DATE = datetime(2026, 11, 20, 6, 45, tzinfo=UTC)
SLUGS = sorted(p.stem for p in ARTICLES.glob("*.html"))
LANGUAGES = {a["slug"]: a["language"] for a in load_manifest() if "language" in a}

LONG_SUMMARY = (
    "The harbour authority said on Thursday that the new container terminal would open next spring, "
    "two years later than planned, after a dispute with the main contractor over rising steel costs. "
    "Unions welcomed the deal, which keeps 400 jobs at the old quay until the move is complete."
)


def sample_html(slug: str) -> str:
    return (ARTICLES / f"{slug}.html").read_text(encoding="utf-8").replace("{{BASE}}", BASE)


def make_page(
    html: str | bytes,
    url: str = f"{BASE}/articles/page.html",
    published_at: datetime | None = None,
    summary: str | None = None,
    title: str | None = None,
    content_type: str | None = "text/html; charset=utf-8",
    http_status: int | None = 200,
) -> PageFetch:
    body = html.encode("utf-8") if isinstance(html, str) else html
    entry = Entry(
        source_id="feed0001feed0001",
        url=url,
        canonical_url=canonicalize(url),
        title=title,
        published_at=published_at,
        summary=summary,
    )
    fetch = FetchResult(
        url=url,
        final_url=url,
        status=FetchStatus.OK,
        http_status=http_status,
        content_type=content_type,
        body=body,
    )
    return PageFetch(entry=entry, fetch=fetch)


def sample_page(slug: str, published_at: datetime | None = None, html: str | None = None) -> PageFetch:
    return make_page(
        html if html is not None else sample_html(slug),
        url=f"{BASE}/articles/{slug}.html",
        published_at=published_at,
        summary="A short feed summary.",
    )


def meta(html: str, attr: str, name: str) -> str:
    found = re.search(rf'<meta {attr}="{re.escape(name)}" content="([^"]*)"', html)
    assert found, f"{name} missing from page"
    return found.group(1)


def furniture_lines(html: str) -> list[str]:
    """Texts of related-stories boxes, newsletter sign-ups, sidebars and the site footer."""
    tree = lxml.html.fromstring(html)
    nodes = tree.xpath(
        "//*[contains(@class, 'related') or contains(@class, 'more-stories')"
        " or contains(@class, 'newsletter') or contains(@class, 'signup')]"
        " | //aside | //footer[not(ancestor::article)]"
    )
    lines = {" ".join(t.split()) for node in nodes for t in node.itertext()}
    return sorted(line for line in lines if len(line) >= 12)


SHORT_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Brief item</title></head><body><article><h1>Brief item</h1>
<p>Port reopens.</p></article></body></html>"""


def minimal_page(published: str) -> str:
    paragraphs = "".join(
        f"<p>{sentence} The committee heard evidence from engineers, residents and the regional "
        "transport board over three long sessions this autumn.</p>"
        for sentence in (
            "The bridge across the estuary will close for repairs next month, the council said.",
            "Drivers will be diverted through the town centre, adding about twenty minutes to journeys.",
            "Local businesses have asked for compensation for the expected fall in trade.",
            "The council said the work was overdue and could not be postponed again.",
        )
    )
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Estuary bridge to close for repairs</title>
<meta property="og:title" content="Estuary bridge to close for repairs">
<meta property="article:published_time" content="{published}">
</head><body><article><h1>Estuary bridge to close for repairs</h1>{paragraphs}</article></body></html>"""


# ----------------------------------------------------------- sample pages


@pytest.mark.parametrize("slug", SLUGS)
def test_extract_sample_page(slug: str) -> None:
    html = sample_html(slug)
    article = extract_article(sample_page(slug, published_at=FEED_DATE), now=NOW)

    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert h1
    assert article.title == " ".join(h1.group(1).split())
    assert article.title == meta(html, "property", "og:title")
    assert article.author == meta(html, "name", "author")
    assert article.site_name == meta(html, "property", "og:site_name")
    assert article.language == LANGUAGES.get(slug, "en")
    assert article.word_count >= 300
    assert article.word_count == len(words_of(article.text))  # Chinese counts characters
    assert article.extract_method == "trafilatura-precision"
    assert article.published_at == FEED_DATE
    assert article.date_method == "feed"
    assert article.fetched_at == NOW
    assert article.canonical_url == f"{BASE}/articles/{slug}.html"
    assert len(article.article_id) == 16

    # the first body paragraph is in, the furniture is out
    first_paragraph = re.search(r"<p>([^<]{80,})</p>", html)
    assert first_paragraph
    assert first_paragraph.group(1)[:80] in article.text
    assert "Related stories" not in article.text
    assert furniture_lines(html)
    leaked = [line for line in furniture_lines(html) if line in article.text]
    assert leaked == []


def test_page_date_used_when_feed_has_none() -> None:
    slug = "corvane-orbit-7-smartphone-launch"
    html = sample_html(slug)
    published = datetime.fromisoformat(meta(html, "property", "article:published_time"))
    article = extract_article(sample_page(slug), now=NOW)
    assert article.date_method == "page-metadata"
    assert article.published_at is not None
    assert article.published_at.date() == published.date()
    assert article.published_at.utcoffset() is not None


def test_page_date_keeps_time_of_day() -> None:
    # article:published_time is 2026-11-24T15:30:00Z; the page-metadata date must not be cut to midnight.
    slug = "corvane-orbit-7-smartphone-launch"
    html = sample_html(slug)
    published = datetime.fromisoformat(meta(html, "property", "article:published_time"))
    assert published == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    article = extract_article(sample_page(slug), now=NOW)
    assert article.date_method == "page-metadata"
    assert article.published_at == published


def test_future_page_date_on_minimal_page_falls_back_to_first_seen() -> None:
    article = extract_article(make_page(minimal_page("2099-03-04T10:00:00Z")), now=NOW)
    assert article.date_method == "first-seen"
    assert article.published_at == NOW


def test_minimal_page_with_plausible_date() -> None:
    article = extract_article(make_page(minimal_page("2026-11-28T10:00:00Z")), now=NOW)
    assert article.date_method == "page-metadata"
    assert article.published_at is not None
    assert article.published_at.date() == datetime(2026, 11, 28).date()


@pytest.mark.parametrize("slug", ["iran-unveils-solid-fuel-missile", "corvane-orbit-7-smartphone-launch"])
def test_future_page_date_on_sample_page_falls_back_to_first_seen(slug: str) -> None:
    # Every publication date on the page moved to 2099; only the footer's copyright year stays.
    html = re.sub(r"\b2026-11-(\d\d)", r"2099-11-\1", sample_html(slug))
    html = re.sub(r"(November \d+, |\d+ November )2026", r"\g<1>2099", html)
    assert "2026-11" not in html
    article = extract_article(sample_page(slug, html=html), now=NOW)
    assert article.date_method == "first-seen"
    assert article.published_at == NOW


def test_page_date_after_now_falls_back_to_first_seen() -> None:
    # the page says 2026-11-24; for a monitor whose clock says 2026-01-01 that is the future
    early = datetime(2026, 1, 1, tzinfo=UTC)
    article = extract_article(sample_page("corvane-orbit-7-smartphone-launch"), now=early)
    assert article.date_method == "first-seen"
    assert article.published_at == early


# -------------------------------------------------------------- fallbacks


def test_short_page_falls_back_to_long_feed_summary() -> None:
    assert len(LONG_SUMMARY) >= MIN_TEXT_CHARS
    page = make_page(SHORT_PAGE, summary=LONG_SUMMARY, title="Feed title", published_at=FEED_DATE)
    article = extract_article(page, now=NOW)
    assert article.extract_method == "feed-summary"
    assert article.text == LONG_SUMMARY
    assert article.word_count == len(LONG_SUMMARY.split())
    assert article.title in {"Brief item", "Feed title"}
    assert article.language == "en"
    assert article.date_method == "feed"


@pytest.mark.parametrize("summary", [None, "", "Port reopens after storm; more to follow."])
def test_short_page_with_short_summary_raises(summary: str | None) -> None:
    with pytest.raises(ExtractionFailed, match=str(MIN_TEXT_CHARS)):
        extract_article(make_page(SHORT_PAGE, summary=summary), now=NOW)


def test_extract_batch_returns_failures_instead_of_raising() -> None:
    good = sample_page("vienna-talks-resume-jcpoa", published_at=FEED_DATE)
    garbage = make_page(b"\x00\xff" * 1000, url=f"{BASE}/garbage", content_type="text/html", http_status=200)
    empty = make_page(b"", url=f"{BASE}/empty", content_type=None, http_status=204)
    short = make_page(SHORT_PAGE, url=f"{BASE}/short")
    no_body = PageFetch(
        entry=empty.entry,
        fetch=FetchResult(url=f"{BASE}/none", final_url=f"{BASE}/none", status=FetchStatus.OK),
    )
    articles, failures = extract_batch([garbage, good, empty, short, no_body], now=NOW)
    assert [a.canonical_url for a in articles] == [good.entry.canonical_url]
    assert [f.entry for f in failures] == [garbage.entry, empty.entry, short.entry, no_body.entry]
    assert all(f.status is FetchStatus.PERMANENT for f in failures)
    assert [f.http_status for f in failures] == [200, 204, 200, None]
    assert all(f.error for f in failures)


def test_extract_batch_empty() -> None:
    assert extract_batch([], now=NOW) == ([], [])


# ---------------------------------------------------------------- decoding

FRENCH = (
    "<html><body><p>Le café était très animé ce matin : « Voilà la fenêtre », dit l’élève à côté de "
    "l’église. Où est passé le garçon ? Il s’est dirigé vers la forêt près du château.</p></body></html>"
)
JAPANESE = (
    "<html><body><p>日本語のテキストです。東京は日本の首都であり、多くの人々が住んでいます。"
    "今日は天気が良いので、公園を散歩しました。桜の花がとても綺麗でした。</p></body></html>"
)


def test_header_charset_wins_over_meta() -> None:
    page = '<html><head><meta charset="utf-8"></head><body>caf\u00e9 \u201cquoted\u201d</body></html>'
    body = page.encode("cp1252")
    assert decode_html(body, "text/html; charset=windows-1252") == page
    assert decode_html(body, 'text/html; Charset="Windows-1252"') == page


def test_header_charset_wins_when_meta_is_wrong_the_other_way() -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body>na\u00efve \u2014 \u20ac</body></html>'
    assert decode_html(page.encode("utf-8"), "text/html; charset=utf-8") == page


@pytest.mark.parametrize(
    "head",
    [
        '<meta charset="windows-1252">',
        "<meta charset=windows-1252>",
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
    ],
)
def test_meta_charset_used_without_header(head: str) -> None:
    page = f"<html><head>{head}</head><body>\u201cCaf\u00e9\u201d cr\u00e8me \u20ac5</body></html>"
    body = page.encode("cp1252")
    assert decode_html(body, None) == page
    assert decode_html(body, "text/html") == page


def test_unknown_header_charset_falls_through_to_meta() -> None:
    page = '<html><head><meta charset="windows-1252"></head><body>caf\u00e9</body></html>'
    assert decode_html(page.encode("cp1252"), "text/html; charset=x-no-such-codec") == page


def test_undeclared_windows_1252_is_detected() -> None:
    body = FRENCH.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = decode_html(body, None)
    assert "café" in text
    assert "l’élève" in text
    assert "« Voilà la fenêtre »" in text


def test_undeclared_shift_jis_is_detected() -> None:
    text = decode_html(JAPANESE.encode("shift_jis"), None)
    assert "日本語" in text
    assert "東京" in text
    assert text == JAPANESE


def test_undeclared_utf8() -> None:
    assert decode_html(FRENCH.encode("utf-8"), None) == FRENCH


def test_decode_empty_and_garbage() -> None:
    assert decode_html(b"", None) == ""
    assert isinstance(decode_html(b"\x00\xff" * 100, None), str)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The government announced new measures on Tuesday to support farmers hit by the drought.", "en"),
        (
            "Le gouvernement a annoncé mardi une nouvelle série de mesures pour soutenir les "
            "agriculteurs touchés par la sécheresse.",
            "fr",
        ),
        (
            "Die Bundesregierung hat am Dienstag neue Maßnahmen zur Unterstützung der Landwirte "
            "beschlossen, die unter der Dürre leiden.",
            "de",
        ),
    ],
)
def test_detect_language(text: str, code: str) -> None:
    assert detect_language(text) == code


@pytest.mark.parametrize("text", ["", "   ", "Hi there", "12345"])
def test_detect_language_too_short(text: str) -> None:
    assert detect_language(text) is None
