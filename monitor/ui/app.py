"""The review page: a local web app where analysts judge flagged matches with the keyboard.

Pages are rendered on the server from short read-only connections (one per request);
verdicts go through :func:`monitor.review.decisions.record`, under the writer lease, like
``monitor review``. The app is meant for 127.0.0.1 and has no login, so it answers only
requests addressed to a loopback host (which defeats DNS rebinding) and accepts a verdict
only with the ``X-Monitor-UI`` header that ``review.js`` sends and from its own origin (a
page elsewhere cannot add that header without a CORS preflight, which is never granted).
Article titles, passages and URLs are third-party input: templates autoescape everything,
and links are drawn only for http(s) URLs.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import duckdb
import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor import store
from monitor.alerts.messages import NOT_TRANSLATED, highlight
from monitor.config import Settings
from monitor.models import QueueItem, ReviewDecision
from monitor.review.decisions import record, reviewer_name
from monitor.store import reviews, views
from monitor.ui.chart import coverage_svg

HERE = Path(__file__).resolve().parent
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# A page waits this long at most for an ingest run's write window to close, and a verdict
# this long for the writer lease: the analyst sees "busy, try again" instead of a hung page.
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 10.0
SIDEBAR_CHART_W = 340  # the chart's width in the queue page's side column, drawn at its shown size
MAX_LIMIT, MAX_DAYS, MAX_ID, MAX_NOTE, MAX_BODY = 500, 366, 256, 2000, 16_384
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Stand-ins for <mark> while the passage is still raw text: keywords are matched on the raw
# text and the pieces escaped afterwards, because matching on escaped text could split an
# entity (a keyword "amp" inside "&amp;").
_OPEN, _CLOSE = "\x02", "\x03"
T = TypeVar("T")


class Unavailable(HTTPException):
    """The database cannot be read right now (missing, busy, outdated): a page says why and what to do."""

    def __init__(self, status_code: int, detail: str, hint: str | None = None) -> None:
        super().__init__(status_code, detail)
        self.hint = hint


def is_loopback(host: str) -> bool:
    """Tell whether a host name or address is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host part of a Host header (``[::1]:8780`` → ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class LocalOnly:
    """ASGI middleware: refuse requests not addressed to a loopback host, and add security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request if its Host is a loopback name, else answer 403."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not is_loopback(_host_name(Headers(scope=scope).get("host", ""))):
            refusal = PlainTextResponse("The review page answers only on a loopback address.", 403)
            await refusal(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
            await send(message)

        await self.app(scope, receive, send_secured)


def safe_href(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) link fit for an ``href``, else None."""
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def passage_html(passage: str, keywords: list[str]) -> Markup:
    """The passage escaped for HTML, with each keyword occurrence in ``<mark>``."""
    raw = passage.replace(_OPEN, "").replace(_CLOSE, "")
    marked = highlight(raw, [k for k in keywords if k.strip()], _OPEN, _CLOSE)
    return Markup(str(escape(marked)).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>"))


def when(value: datetime | None) -> str:
    """A time as ``2026-11-20 12:00 UTC`` (``date unknown`` for None)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "date unknown"


def _item_view(item: QueueItem) -> dict[str, Any]:
    keywords = sorted(item.keyword_hits)
    return {
        **asdict(item),
        "href": safe_href(item.url),
        "passage_html": passage_html(item.passage, keywords),
        "keywords": keywords,
        "not_translated": bool(item.language and item.language != "en"),
    }


def _item_json(item: QueueItem) -> dict[str, Any]:
    data = asdict(item)
    for key in ("published_at", "matched_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise HTTPException(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _text(payload: dict[str, Any], name: str, limit: int) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise HTTPException(400, f"{name} must be a string of at most {limit} characters (no NUL)")
    return value.strip()


def parse_review(payload: object) -> tuple[str, str, str, str | None]:
    """``(article_id, topic_id, verdict, note)`` from a verdict's JSON body.

    Raises:
        HTTPException: 400 when the body is not exactly such an object.
    """
    if not isinstance(payload, dict):
        raise HTTPException(400, "the body must be a JSON object")
    unknown = set(payload) - {"article_id", "topic_id", "verdict", "note"}
    if unknown:
        raise HTTPException(400, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    article_id, topic_id = _text(payload, "article_id", MAX_ID), _text(payload, "topic_id", MAX_ID)
    if not article_id or not topic_id:
        raise HTTPException(400, "article_id and topic_id must not be empty")
    verdict = payload.get("verdict")
    if verdict not in reviews.VERDICTS:
        raise HTTPException(400, f"verdict must be one of {', '.join(reviews.VERDICTS)}")
    note = _text(payload, "note", MAX_NOTE) if payload.get("note") is not None else None
    return article_id, topic_id, str(verdict), note or None


def check_same_origin(request: Request) -> None:
    """Refuse a write that did not come from this page.

    Raises:
        HTTPException: 403 without ``X-Monitor-UI: 1``, or with a foreign ``Origin`` or fetch site.
    """
    if request.headers.get("x-monitor-ui") != "1":
        raise HTTPException(
            403, "verdicts are accepted from the review page only (X-Monitor-UI header missing)"
        )
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        raise HTTPException(403, f"verdicts are accepted from the review page only (Origin {origin} refused)")
    if request.headers.get("sec-fetch-site") not in (None, "same-origin"):
        raise HTTPException(403, "verdicts are accepted from the review page only (cross-site request)")


class Database:
    """Short read-only connections and verdict writes, never both at once in this process.

    DuckDB refuses a read-write connection to a file that the same process holds open
    read-only (and the reverse), so the app's connections take turns behind one lock.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.write_settings = settings.model_copy(
            update={"db_lock_timeout_s": min(settings.db_lock_timeout_s, WRITE_TIMEOUT_S)}
        )
        self._lock = threading.Lock()

    def read(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``query`` on a fresh read-only connection.

        Raises:
            Unavailable: the database is missing, held by a writer for too long, or outdated.
        """
        db = self.settings.store_target
        timeout = min(self.settings.db_lock_timeout_s, READ_TIMEOUT_S)
        with self._lock:
            try:
                with store.connect(db, read_only=True, lock_timeout_s=timeout) as con:
                    return query(con)
            except store.DatabaseMissing:
                raise Unavailable(
                    503,
                    f"No database yet at {db}.",
                    "Run `monitor demo` (then `monitor ui --db data/demo.duckdb`) or `monitor run` to create "
                    "one, then reload this page.",
                ) from None
            except store.DatabaseBusy as exc:
                raise Unavailable(503, str(exc), "An ingest run is writing; reload in a moment.") from None
            except store.DatabaseOutdated as exc:
                raise Unavailable(503, str(exc)) from None

    def write(self, decision: ReviewDecision) -> str:
        """Record a verdict under the writer lease; returns the review id."""
        with self._lock:
            return record(self.write_settings, decision)


def create_app(settings: Settings, clock: Callable[[], datetime] = store.now_utc) -> Starlette:
    """The review web app over the database ``settings.db``.

    Args:
        settings: the database, its lock timeout, and the reviewer's name.
        clock: the current time (UTC), whose day ends the coverage chart.

    Returns:
        A Starlette application; serve it on a loopback address (``monitor ui``).
    """
    db = Database(settings)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["href"] = safe_href
    env.globals.update(
        not_translated=NOT_TRANSLATED, db_path=str(settings.db), reviewer=reviewer_name(settings)
    )
    templates = Jinja2Templates(env=env)
    static = {
        f.name: (f.read_bytes(), STATIC_TYPES[f.suffix])
        for f in (HERE / "static").iterdir()
        if f.suffix in STATIC_TYPES
    }

    def chart(
        con: duckdb.DuckDBPyConnection, days: int, width: int = 760, title: str = "Matches per topic per day"
    ) -> str:
        today = clock().astimezone(UTC).date()
        topics, counts = views.coverage_by_day(con, today, days)
        axis: list[date] = views.coverage_days(today, days)
        return coverage_svg(
            axis,
            [(name, counts.get(topic_id, {})) for topic_id, name in topics],
            title=f"{title}, last {days} days",
            width=width,
        )

    async def queue_page(request: Request) -> Response:
        topic = request.query_params.get("topic") or None
        limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)

        def load(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            topics = views.topic_counts(con)
            if topic is not None and topic not in {t.topic_id for t in topics}:
                raise HTTPException(400, f"no topic {topic!r}")
            items = reviews.review_queue(con, topic, limit)
            return {
                "topics": topics,
                "items": [_item_view(i) for i in items],
                "chart": Markup(chart(con, 30, SIDEBAR_CHART_W, "Matches per day")),
            }

        context = await run_in_threadpool(db.read, load)
        context.update(
            topic=topic, pending=sum(t.pending for t in context["topics"] if topic in (None, t.topic_id))
        )
        return templates.TemplateResponse(request, "queue.html", context)

    async def api_queue(request: Request) -> Response:
        topic = request.query_params.get("topic") or None
        limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)
        items = await run_in_threadpool(db.read, lambda con: reviews.review_queue(con, topic, limit))
        return JSONResponse({"topic": topic, "count": len(items), "items": [_item_json(i) for i in items]})

    async def api_review(request: Request) -> Response:
        check_same_origin(request)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(415, "send the verdict as application/json")
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the body is not valid JSON") from None
        article_id, topic_id, verdict, note = parse_review(payload)
        found = await run_in_threadpool(db.read, lambda con: reviews.queue_item(con, article_id, topic_id))
        if found is None:
            raise HTTPException(400, f"no match of article {article_id} with topic {topic_id}")
        decision = ReviewDecision(article_id, topic_id, verdict, reviewer_name(settings), note)
        try:
            review_id = await run_in_threadpool(db.write, decision)
        except (store.WriterBusy, store.DatabaseBusy) as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse(
            {"review_id": review_id, "article_id": article_id, "topic_id": topic_id, "verdict": verdict}
        )

    async def story_page(request: Request) -> Response:
        story_id = request.path_params["story_id"]
        if len(story_id) > MAX_ID:
            raise HTTPException(404, "no such story")

        def load(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            header = views.story_header(con, story_id)
            if header is None:
                raise HTTPException(404, f"no story {story_id}")
            carriers = views.story_carriers(con, story_id)
            return {
                "story": header,
                "articles": views.story_articles(con, story_id),
                "carriers": carriers,
                "others": [c for c in carriers if c.source_id != header.first_source_id],
                "matches": views.story_matches(con, story_id),
            }

        context = await run_in_threadpool(db.read, load)
        return templates.TemplateResponse(request, "story.html", context)

    async def chart_svg(request: Request) -> Response:
        days = _int_param(request, "days", 30, 1, MAX_DAYS)
        svg = await run_in_threadpool(db.read, lambda con: chart(con, days))
        return Response(svg, media_type="image/svg+xml; charset=utf-8")

    async def static_file(request: Request) -> Response:
        found = static.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404, "no such file")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "no-cache"})

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        hint = exc.hint if isinstance(exc, Unavailable) else None
        context = {"status": exc.status_code, "message": exc.detail, "hint": hint}
        return templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code)

    return Starlette(
        routes=[
            Route("/", queue_page, name="queue"),
            Route("/api/queue", api_queue),
            Route("/api/review", api_review, methods=["POST"], max_body_size=MAX_BODY),
            Route("/story/{story_id:str}", story_page, name="story"),
            Route("/chart/coverage.svg", chart_svg),
            Route("/static/{name:str}", static_file),
        ],
        middleware=[Middleware(LocalOnly)],
        exception_handlers={HTTPException: problem},
    )
