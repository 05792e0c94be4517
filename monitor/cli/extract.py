"""``monitor extract``: run the project's extraction on saved pages or URLs, to see why an article looks wrong."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_FAILED, EXIT_OK
from monitor.config import Settings
from monitor.ingest.urls import InvalidURL, canonicalize
from monitor.models import Entry, FetchResult, FetchStatus, PageFetch

MAX_FILE_BYTES = 50 * 1024 * 1024


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``monitor extract`` on the ``monitor`` parser."""
    ex = sub.add_parser(
        "extract",
        help="extract article text and metadata from saved pages (.html, .html.gz) or URLs",
        description="Prints one JSON object per input (one line each with --format jsonl) with input, url, "
        "canonical_url, title, author, published_at, date_method, language, text, word_count and method. "
        "URLs are fetched with the monitor's guarded fetcher (MONITOR_FETCH_ALLOW opens private hosts).",
    )
    ex.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    ex.add_argument("--url", help="the page URL of saved files (for canonical URL and metadata)")
    ex.add_argument("--format", choices=("json", "jsonl"), default="json")
    ex.set_defaults(handler=cmd_extract)


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def _read_file(path: Path) -> bytes:
    data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    return data


def _fetch_urls(urls: list[str]) -> dict[str, FetchResult]:
    from monitor.ingest.guard import AddressGuard
    from monitor.ingest.http import PAGE_TYPES, open_fetcher

    settings = Settings()

    async def run() -> dict[str, FetchResult]:
        async with open_fetcher(
            settings.fetch_limits(), AddressGuard(settings.fetch_allow), settings.user_agent
        ) as f:
            results = await asyncio.gather(*(f.get(u, accept_types=PAGE_TYPES) for u in urls))
        return dict(zip(urls, results, strict=True))

    return asyncio.run(run())


def record(source: str, page_url: str | None, fetch: FetchResult, now: datetime) -> dict[str, Any]:
    """Extract one page into the JSON record ``monitor extract`` prints."""
    from monitor.ingest.extraction import ExtractionFailed, extract_article

    out: dict[str, Any] = {"input": source, "url": page_url}
    canonical = None
    if page_url:
        try:
            canonical = canonicalize(page_url)
        except InvalidURL:
            canonical = None
    out["canonical_url"] = canonical
    if fetch.status is not FetchStatus.OK:
        out["error"] = f"{fetch.status.value}: {fetch.error}"
        return out
    entry = Entry("cli", page_url or source, canonical or source, None, None, None)
    try:
        article = extract_article(PageFetch(entry, fetch), now)
    except ExtractionFailed as exc:
        out["error"] = str(exc)
        return out
    out.update(
        title=article.title,
        author=article.author,
        published_at=article.published_at.isoformat() if article.published_at else None,
        date_method=article.date_method,
        language=article.language,
        site_name=article.site_name,
        text=article.text,
        word_count=article.word_count,
        method=article.extract_method,
    )
    return out


def cmd_extract(args: argparse.Namespace) -> int:
    """Extract every input and print the records."""
    now = datetime.now(UTC)
    urls = [i for i in args.inputs if _is_url(i)]
    fetched = _fetch_urls(urls) if urls else {}
    failures = 0
    records: list[dict[str, Any]] = []
    for source in args.inputs:
        if source in fetched:
            result = fetched[source]
            rec = record(source, result.final_url, result, now)
        else:
            try:
                body = _read_file(Path(source))
            except (OSError, ValueError) as exc:
                rec = {"input": source, "url": args.url, "error": f"cannot read: {exc}"}
            else:
                fake_url = args.url or ""
                result = FetchResult(fake_url, fake_url, FetchStatus.OK, 200, None, body)
                rec = record(source, args.url, result, now)
        failures += "error" in rec
        records.append(rec)
        if args.format == "jsonl":
            print(json.dumps(rec, ensure_ascii=False), flush=True)
    if args.format == "json":
        print(json.dumps(records[0] if len(records) == 1 else records, ensure_ascii=False, indent=2))
    return EXIT_FAILED if failures == len(records) else EXIT_OK
