"""Turn downloaded pages into articles: text and metadata with trafilatura."""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import trafilatura
import trafilatura.meta
from charset_normalizer import from_bytes
from tld import get_fld
from trafilatura.settings import Document

from monitor.ingest.dates import parse_page_date, plausible_date
from monitor.ingest.language import detect_language, words_of
from monitor.ingest.urls import InvalidURL, canonicalize, stable_id
from monitor.models import Article, FetchStatus, PageFailure, PageFetch
from monitor.stories import text_hash

log = logging.getLogger(__name__)

MIN_TEXT_CHARS = 200
# Tried in order until one yields MIN_TEXT_CHARS; the feed summary is the last resort.
# Precision first: on the ScrapingHub benchmark it scores F1 0.964 against 0.953 for
# trafilatura's defaults (bench/extraction.py); recall settings rescue pages it cuts too far.
EXTRACTION_CHAIN: tuple[tuple[str, str], ...] = (
    ("trafilatura-precision", "precision"),  # (method name, trafilatura mode)
    ("trafilatura-recall", "recall"),
)
# htmldate settings: keep the time of day, prefer the original publication date, and do
# not guess from loose text such as a footer's copyright year. The upper bound is left
# open so that the future-date check happens in one place (plausible_date) against `now`.
DATE_PARAMS = {
    "extensive_search": False,
    "original_date": True,
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
    "max_date": "2200-12-31",
}
# trafilatura keeps module-level caches that grow with every page (its issue #216).
RESET_CACHES_EVERY = 500
# trafilatura deletes zero-width joiners from text, which breaks Persian words such as سه‌شنبه
# (written with a zero-width non-joiner). They cross the extractor as visible markers instead.
_JOINERS = {"\u200c": "\u27ea\u27eb", "\u200d": "\u27ec\u27ed"}

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)


class ExtractionFailed(Exception):
    """Raised when a page yields no usable article text."""


def decode_html(body: bytes, content_type: str | None) -> str:
    """Decode a page: HTTP charset, then ``<meta charset>``, then detection.

    Args:
        body: raw page bytes.
        content_type: the Content-Type header, if any.

    Returns:
        The page as text (undecodable bytes replaced).
    """
    for candidate in (_header_charset(content_type), _meta_charset(body[:4096])):
        if candidate:
            try:
                return body.decode(candidate, errors="replace")
            except LookupError:
                continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", errors="replace")


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return _valid_codec(value.strip().strip("\"'"))
    return None


def _meta_charset(head: bytes) -> str | None:
    found = _META_CHARSET.search(head)
    return _valid_codec(found.group(1).decode("ascii", "ignore")) if found else None


def _valid_codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def run_trafilatura(html: str, url: str | None, mode: str = "default") -> Document | None:
    """Run trafilatura with metadata, without comment sections.

    Args:
        html: the decoded page.
        url: the page URL (helps metadata and relative links).
        mode: ``precision`` (less noise), ``recall`` (more text) or ``default``.

    Returns:
        trafilatura's document, or None when it found nothing.
    """
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        favor_precision=mode == "precision",
        favor_recall=mode == "recall",
        date_extraction_params=DATE_PARAMS,
    )
    return doc if isinstance(doc, Document) else None


def _protect(html: str) -> str:
    for joiner, marker in _JOINERS.items():
        html = html.replace(joiner, marker)
    return html


def _restore(text: str | None) -> str | None:
    if text is None:
        return None
    for joiner, marker in _JOINERS.items():
        text = text.replace(marker, joiner)
    return text


def run_chain(html: str, url: str | None) -> tuple[Document | None, str, str]:
    """Run ``EXTRACTION_CHAIN`` until a method yields ``MIN_TEXT_CHARS``.

    Returns:
        ``(document, method, text)`` of the first sufficient method, else of the
        method that found the longest text (which may be short or empty).
    """
    best: tuple[Document | None, str, str] = (None, EXTRACTION_CHAIN[0][0], "")
    for name, mode in EXTRACTION_CHAIN:
        doc = run_trafilatura(html, url, mode)
        text = (doc.text or "").strip() if doc is not None else ""
        if len(text) >= MIN_TEXT_CHARS:
            return doc, name, text
        if best[0] is None or len(text) > len(best[2]):
            best = (doc, name, text)
    return best


def extract_text(html: str, url: str | None = None) -> str:
    """The article text the project's extraction chain finds in a page ('' when none)."""
    return _restore(run_chain(_protect(html), url)[2]) or ""


def extract_article(page: PageFetch, now: datetime | None = None) -> Article:
    """Extract one article from a downloaded page.

    Tries trafilatura's precision settings, then its recall settings, then the feed
    entry's own summary; text shorter than ``MIN_TEXT_CHARS`` counts as failed. The
    published date is the feed's, else the page's metadata, else the first-seen time,
    skipping any date in the future or before 1995.

    Args:
        page: the page fetch (with body) and the entry that pointed at it.
        now: current time, used as first-seen date and to reject future dates.

    Returns:
        The article.

    Raises:
        ExtractionFailed: no step produced enough text.
    """
    now = now or datetime.now(UTC)
    entry, fetch = page.entry, page.fetch
    html = decode_html(fetch.body or b"", fetch.content_type)
    doc, method, text = run_chain(_protect(html), fetch.final_url)
    text = _restore(text) or ""
    if doc is not None:
        doc.title, doc.author, doc.sitename = (
            _restore(doc.title),
            _restore(doc.author),
            _restore(doc.sitename),
        )
    if len(text) < MIN_TEXT_CHARS:
        summary = entry.summary or ""
        if len(summary) < MIN_TEXT_CHARS:
            raise ExtractionFailed(
                f"extracted {len(text)} characters (feed summary {len(summary)}); need {MIN_TEXT_CHARS}"
            )
        text, method = summary, "feed-summary"

    published, date_method = entry.published_at, "feed"
    if published is None:
        page_date = parse_page_date(doc.date if doc is not None else None)
        if page_date is not None and plausible_date(page_date, now):
            published, date_method = page_date, "page-metadata"
        else:
            published, date_method = now, "first-seen"

    title = (doc.title if doc is not None else None) or entry.title
    language = (doc.language if doc is not None else None) or detect_language(text)
    canonical = page_canonical(entry.canonical_url, fetch.final_url, doc.url if doc is not None else None)
    article_id = stable_id(canonical)
    return Article(
        article_id=article_id,
        canonical_url=canonical,
        url=entry.url,
        source_id=entry.source_id,
        title=title,
        author=doc.author if doc is not None else None,
        published_at=published,
        date_method=date_method,
        language=language,
        site_name=doc.sitename if doc is not None else None,
        text=text,
        word_count=len(words_of(text)),
        extract_method=method,
        fetched_at=now,
        text_hash=text_hash(text),
        entry_id=entry.article_id if article_id != entry.article_id else None,
    )


def page_canonical(entry_canonical: str, final_url: str, declared: str | None) -> str:
    """The canonical URL of a page: its declared one when trustworthy, else where it ended up.

    A page's ``rel=canonical`` or ``og:url`` is believed only on the registrable domain
    the page was served from, so a page cannot claim another site's identity. Without
    one, the URL after redirects is used, which unwraps feed-proxy and tracking redirects.

    Args:
        entry_canonical: canonical form of the URL the feed gave.
        final_url: the URL the page was served from after redirects.
        declared: the canonical link or og:url the page declares, if any.

    Returns:
        A canonical URL (see :func:`monitor.ingest.urls.canonicalize`).
    """
    for candidate in (declared, final_url):
        if not candidate:
            continue
        try:
            url = canonicalize(candidate)
        except InvalidURL:
            continue
        if same_site(url, final_url):
            return url
    return entry_canonical


def same_site(a: str, b: str) -> bool:
    """Tell whether two URLs share a registrable domain (or, for IP hosts, the host)."""
    first, second = get_fld(a, fail_silently=True), get_fld(b, fail_silently=True)
    if first and second:
        return bool(first == second)
    return urlsplit(a).hostname == urlsplit(b).hostname


def extract_batch(
    pages: Iterable[PageFetch],
    now: datetime | None = None,
    extract: Callable[[PageFetch, datetime | None], Article] = extract_article,
) -> tuple[list[Article], list[PageFailure]]:
    """Extract a batch of pages; failures are returned, not raised.

    A page with too little text is a verdict (``permanent``). Any other exception is a
    bug, in this code or in a library it calls: it is logged with its traceback and
    recorded as ``error`` with its type and message, and the page is retried on later runs.

    Args:
        pages: downloaded pages (status OK).
        now: current time.
        extract: the per-page extractor (default :func:`extract_article`).

    Returns:
        The articles and the pages that failed extraction.
    """
    articles: list[Article] = []
    failures: list[PageFailure] = []
    for count, page in enumerate(pages, start=1):
        try:
            articles.append(extract(page, now))
        except ExtractionFailed as exc:
            failures.append(PageFailure(page.entry, FetchStatus.PERMANENT, page.fetch.http_status, str(exc)))
        except Exception as exc:  # unanticipated: a bug, recorded as one, never a verdict
            log.exception("bug while extracting %s", page.entry.url)
            failures.append(
                PageFailure(
                    page.entry, FetchStatus.ERROR, page.fetch.http_status, f"{type(exc).__name__}: {exc}"
                )
            )
        if count % RESET_CACHES_EVERY == 0:
            reset_extractor_caches()
    reset_extractor_caches()
    return articles, failures


def reset_extractor_caches() -> None:
    """Empty trafilatura's and htmldate's module caches so memory stays flat on long runs."""
    # htmldate logs an ERROR for one cache it cannot clear in this version; it is harmless.
    htmldate_log = logging.getLogger("htmldate.meta")
    previous = htmldate_log.level
    htmldate_log.setLevel(logging.CRITICAL)
    try:
        trafilatura.meta.reset_caches()
    finally:
        htmldate_log.setLevel(previous)
