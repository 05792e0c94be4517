"""A news site for two sharded workers: feeds split across two shards that share articles and copies.

The pages are the sample site's (``monitor/demo/sample_site``); the feeds are built after the
server starts, once its port (and so each feed's shard) is known, so that every kind of
overlap is guaranteed to cross shards:

* **shared** articles: listed by a feed of shard 1 and a feed of shard 2;
* **verbatim copies** (``/copies/``): an on-topic page republished under another URL with the
  same text, listed by the other shard's feed (stored once: the later one is an alias);
* **rewrites** (``/rewrites/``): a copy with its lead paragraph rewritten, in the other shard
  (a separate article that joins the original's story).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.demo import load_manifest, site_root
from monitor.demo.clock import days_since_authored, shift_dates
from monitor.ingest.shards import shard_of
from monitor.ingest.urls import canonicalize, stable_id

LEAD = re.compile(r"<p>(.*?)</p>", re.S)


@dataclass
class LakeSite:
    """The running site: its feed URLs per shard and what each page is."""

    base: str
    feeds: dict[int, list[str]] = field(default_factory=dict)  # shard → feed URLs
    listing: dict[str, list[str]] = field(default_factory=dict)  # feed path → page paths
    originals: list[str] = field(default_factory=list)  # page paths under /articles/
    copies: dict[str, str] = field(default_factory=dict)  # /copies/ path → its original
    rewrites: dict[str, str] = field(default_factory=dict)  # /rewrites/ path → its original
    shared: list[str] = field(default_factory=list)  # originals listed in both shards
    delay_s: float = 0.0  # latency of every article page
    # Days the sample site's dates move forward (monitor.demo.clock), fixed for the site's life.
    days: int = field(default_factory=lambda: days_since_authored(datetime.now(UTC)))

    def url(self, path: str) -> str:
        """The absolute URL of a page path."""
        return self.base + path

    def all_feed_urls(self) -> list[str]:
        """Every feed, shard 1's first."""
        return [u for k in sorted(self.feeds) for u in self.feeds[k]]

    def page_ids(self) -> set[str]:
        """The ids (of canonical URLs) of every page any feed lists."""
        return {stable_id(canonicalize(self.url(p))) for pages in self.listing.values() for p in pages}


def _page(path: str, base: str, days: int) -> bytes | None:
    kind, _, name = path.strip("/").partition("/")
    slug = name.removesuffix(".html")
    source = site_root() / "articles" / f"{slug}.html"
    if kind not in ("articles", "copies", "rewrites") or not source.is_file():
        return None
    html = shift_dates(source.read_text(encoding="utf-8"), days)
    if kind != "articles":
        # The copy names itself as canonical, as a syndicating outlet's page does.
        html = html.replace(f"{{{{BASE}}}}/articles/{slug}.html", f"{{{{BASE}}}}/{kind}/{slug}.html")
    if kind == "rewrites":
        html = LEAD.sub(
            "<p>Partner agency report, updated with reaction from regional capitals and a new headline.</p>",
            html,
            count=1,
        )
    return html.replace("{{BASE}}", base).encode("utf-8")


def _feed(site: LakeSite, path: str) -> bytes:
    items = "".join(
        f"<item><title>{p.rsplit('/', 1)[-1]}</title><link>{site.url(p)}</link>"
        f"<guid>{site.url(p)}</guid><pubDate>Wed, 25 Nov 2026 0{i % 10}:00:00 GMT</pubDate></item>"
        for i, p in enumerate(site.listing[path])
    )
    feed = (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{path}</title>'
        f"<link>{site.base}/</link><description>lake site</description>{items}</channel></rss>"
    )
    return shift_dates(feed, site.days).encode()


def _plan(site: LakeSite) -> None:
    """Give each shard three feeds, then spread the sample pages and their copies across them."""
    candidates = (f"/feeds/f{i}.xml" for i in range(1000))
    for path in candidates:
        shard = shard_of(stable_id(site.url(path)), 2)
        if len(site.feeds.setdefault(shard, [])) < 3:
            site.feeds[shard].append(site.url(path))
            site.listing[path] = []
        if len(site.feeds.get(1, [])) == 3 and len(site.feeds.get(2, [])) == 3:
            break
    paths = {k: [u.removeprefix(site.base) for u in urls] for k, urls in site.feeds.items()}
    manifest = [a for a in load_manifest() if (site_root() / "articles" / f"{a['slug']}.html").is_file()]
    on_topic = [a["slug"] for a in manifest if a["topic"] != "none"]
    for i, article in enumerate(manifest):
        page = f"/articles/{article['slug']}.html"
        site.originals.append(page)
        home = 1 + i % 2
        site.listing[paths[home][i % 3]].append(page)
        if i % 5 == 0:  # listed by the other shard too
            site.listing[paths[3 - home][(i + 1) % 3]].append(page)
            site.shared.append(page)
    for j, slug in enumerate(on_topic[:4]):
        original = f"/articles/{slug}.html"
        home = next(k for k, ps in paths.items() if any(original in site.listing[p] for p in ps))
        other = paths[3 - home]
        copy, rewrite = f"/copies/{slug}.html", f"/rewrites/{slug}.html"
        site.copies[copy] = original
        site.rewrites[rewrite] = original
        site.listing[other[j % 3]].append(copy)
        site.listing[other[(j + 1) % 3]].append(rewrite)


@contextmanager
def serve_lake_site(delay_s: float = 0.0) -> Iterator[LakeSite]:
    """Serve the site on 127.0.0.1 for the block (``delay_s`` before each article page)."""
    holder: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site: LakeSite = holder["site"]
            path = self.path.split("?", 1)[0]
            if path in site.listing:
                body, kind = _feed(site, path), "application/rss+xml"
            else:
                page = _page(path, site.base, site.days)
                if page is None:
                    self.send_error(404)
                    return
                if site.delay_s:
                    threading.Event().wait(site.delay_s)
                body, kind = page, "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site = LakeSite(f"http://127.0.0.1:{server.server_address[1]}", delay_s=delay_s)
    _plan(site)
    holder["site"] = site
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
