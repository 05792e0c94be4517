"""A small sample news site, served on 127.0.0.1, to try the monitor offline.

The site's feeds and pages live in ``monitor/sample_site``; every ``{{BASE}}``
in them is replaced by the server's own origin when served, and every date is moved forward
to the days before the server started (:mod:`monitor.demo.clock`), so that the site always
reads as last week's news.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from monitor.demo.clock import days_since_authored, shift_dates

CONTENT_TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
FEED_NAMES = {
    "world.xml": "Global Wire (sample)",
    "defense.atom": "Defense Desk (sample)",
    "gulf.xml": "Gulf Daily English (sample)",
    "world-languages.xml": "Global Wire World Languages (sample)",
}


def site_root() -> Path:
    """Directory holding the sample site's files."""
    return Path(__file__).resolve().parent / "sample_site"


def load_manifest() -> list[dict[str, Any]]:
    """The sample articles with their topic labels (``missiles``, ``nuclear-talks`` or ``none``)."""
    data = yaml.safe_load((site_root() / "manifest.yaml").read_text(encoding="utf-8"))
    return list(data["articles"])


class _SiteHandler(BaseHTTPRequestHandler):
    root: Path
    base: str
    days: int

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path in ("", "/"):
            path = "/index.html"
        target = (self.root / path.lstrip("/")).resolve()
        if self.root not in target.parents or not target.is_file() or target.suffix not in CONTENT_TYPES:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        text = shift_dates(target.read_text(encoding="utf-8"), self.days)
        body = text.replace("{{BASE}}", self.base).encode("utf-8")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES[target.suffix])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


@contextmanager
def serve_sample_site(port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the sample site in a background thread.

    Args:
        port: TCP port; 0 picks a free one.
        host: loopback address to bind.

    Yields:
        The site's origin, e.g. ``http://127.0.0.1:8765``.

    Raises:
        OSError: the port is in use.
    """
    handler: type[_SiteHandler] = type("SampleSiteHandler", (_SiteHandler,), {"root": site_root().resolve()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    base = f"http://{host}:{server.server_address[1]}"
    handler.base = base
    handler.days = days_since_authored(datetime.now(UTC))  # fixed at start: one run sees one site
    thread = threading.Thread(target=server.serve_forever, name="sample-site", daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


def write_feed_list(base: str, path: Path) -> Path:
    """Write a feeds.yaml that points at the sample site's feeds.

    Args:
        base: the site's origin.
        path: where to write the file.

    Returns:
        The path written.
    """
    feeds = [
        {"name": name, "url": f"{base}/feeds/{file}", "language": "en", "tags": ["sample"]}
        for file, name in FEED_NAMES.items()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `monitor demo`: feeds of the bundled sample site.\n"
        + yaml.safe_dump({"feeds": feeds}, sort_keys=False),
        encoding="utf-8",
    )
    return path
