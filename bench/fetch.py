"""Benchmark feed polling: the monitor's async fetcher against a sequential httpx loop.

Run from the project root (offline; every request goes to 127.0.0.0/8 only):
    .venv/bin/python bench/fetch.py [--hosts 50] [--feeds-per-host 10] [--latency-ms 100]

Starts one ThreadingHTTPServer per host on 127.0.0.1 … 127.0.0.<hosts> (Linux routes the
whole 127.0.0.0/8 to loopback), each serving ``--feeds-per-host`` generated RSS 2.0 feeds
of 20 items. Every response is delayed by ``--latency-ms``; servers send an ETag and answer
If-None-Match with 304, count body bytes served, and record the maximum number of requests
in flight at once per host. The servers run in a child process of their own, as real
servers would: in the measuring process their 100 handler threads would take the GIL from
the client being measured. Then measures, in this process:

1. baseline: a sequential ``httpx.Client`` GET + ``feedparser.parse`` per feed;
2. monitor: the run's own polling path, ``NetworkSession.poll`` (the async fetcher with
   ``concurrency=64, per_host_concurrency=2`` and the default per-host spacing, feeds parsed
   in its worker processes, whose start-up is counted) – all polls must be OK with 20 entries;
3. repeat: the same poll with the ETags of run 2 – all polls must be NOT_MODIFIED.

Progress goes to stderr; the last stdout line is a JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import random
import resource
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import feedparser
import httpx

from monitor.config import Settings
from monitor.models import Feed, FeedState, FetchStatus
from monitor.pipeline.network import NetworkSession

ITEMS_PER_FEED = 20
MAX_BYTES = 10 * 1024 * 1024
# fmt: off
SUBJECTS = ["Parliament", "The central bank", "Regional officials", "Rescue teams", "The ministry",
            "Researchers", "Striking workers", "The coalition", "Port authorities", "Health officials"]
VERBS = ["approves", "rejects", "delays", "announces", "investigates", "expands", "suspends", "defends"]
OBJECTS = ["new budget plan", "rail expansion", "emergency funding", "water-sharing deal", "tax reform",
           "vaccine programme", "border checks", "wind-farm project", "pension overhaul", "trade talks"]
# fmt: on
PLACES = ["in the capital", "after overnight talks", "despite protests", "amid floods", "before the vote"]


def make_feed(rng: random.Random, base: str, section: str, now: datetime) -> bytes:
    """Build one RSS 2.0 document with ITEMS_PER_FEED plausible items."""
    items = []
    for n in range(ITEMS_PER_FEED):
        title = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}"
        slug = "-".join(title.lower().split()[:6]).replace(".", "")
        desc = (
            f"{title}. Officials said on {rng.choice(['Monday', 'Tuesday', 'Friday'])} that the decision "
            f"would affect about {rng.randint(2, 900)},000 people and that details would follow. "
            f"<b>Critics</b> called the move {rng.choice(['overdue', 'rushed', 'unfair', 'modest'])}."
        )
        when = now - timedelta(minutes=rng.randint(1, 60 * 72))
        link = f"{base}/{section}/{slug}-{n}.html"
        items.append(
            f"<item><title>{escape(title)}</title><link>{link}</link><guid>{link}</guid>"
            f"<description>{escape(desc)}</description><pubDate>{format_datetime(when)}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{section.title()} news</title><link>{base}/</link><description>Latest {section}</description>"
        f"{''.join(items)}</channel></rss>"
    ).encode()


class FeedServer(ThreadingHTTPServer):
    """One host: serves fixed feed bodies and records concurrency and bytes."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: str, latency_s: float) -> None:
        super().__init__((address, 0), FeedHandler)
        self.latency_s = latency_s
        self.docs: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()
        self.active = self.max_active = self.body_bytes = 0

    def reset(self) -> None:
        with self.lock:
            self.max_active = self.body_bytes = 0


class FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 15  # idle keep-alive connections end on their own
    server: FeedServer

    def do_GET(self) -> None:
        srv, body = self.server, b""
        with srv.lock:
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            time.sleep(srv.latency_s)
            doc = srv.docs.get(self.path)
            body, etag = doc if doc else (b"not found", "")
            if doc and etag in self.headers.get("If-None-Match", ""):
                code, body = 304, b""
            else:
                code = 200 if doc else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            if etag:
                self.send_header("ETag", etag)
            if code != 304:
                self.send_header("Content-Length", str(len(body)))
        finally:
            # Leave the in-flight count before the client can see the response end,
            # so a client that keeps ≤ 2 requests open can never be counted as 3.
            with srv.lock:
                srv.active -= 1
                srv.body_bytes += len(body)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def start_servers(hosts: int, feeds_per_host: int, latency_s: float) -> tuple[list[FeedServer], list[Feed]]:
    rng, now = random.Random(42), datetime.now(UTC)
    servers, feeds = [], []
    sections = ["world", "politics", "business", "science", "health", "sport", "culture", "tech"]
    for h in range(1, hosts + 1):
        srv = FeedServer(f"127.0.0.{h}", latency_s)
        base = f"http://127.0.0.{h}:{srv.server_address[1]}"
        for f in range(feeds_per_host):
            path = f"/feeds/{sections[f % len(sections)]}-{f}.xml"
            body = make_feed(rng, base, sections[f % len(sections)], now)
            srv.docs[path] = (body, '"' + hashlib.sha1(body).hexdigest() + '"')
            feeds.append(Feed(name=f"host{h} feed{f}", url=base + path))
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(srv)
    return servers, feeds


def served(servers: list[FeedServer]) -> tuple[int, int]:
    """Body bytes served and the largest per-host in-flight count since the last reset."""
    return sum(s.body_bytes for s in servers), max(s.max_active for s in servers)


def serve(
    conn: multiprocessing.connection.Connection, hosts: int, feeds_per_host: int, latency_s: float
) -> None:
    """The server process: start the hosts, send the feed list, then answer reset/stats/stop."""
    servers, feeds = start_servers(hosts, feeds_per_host, latency_s)
    size = sum(len(body) for s in servers for body, _ in s.docs.values()) / len(feeds)
    conn.send(([(f.name, f.url) for f in feeds], size))
    while (command := conn.recv()) != "stop":
        if command == "reset":
            for s in servers:
                s.reset()
            conn.send(None)
        elif command == "stats":
            conn.send(served(servers))
    for s in servers:
        s.shutdown()
        s.server_close()
    conn.send(None)


class ServerProcess:
    """The feed hosts in a child process, driven over a pipe."""

    def __init__(self, hosts: int, feeds_per_host: int, latency_s: float) -> None:
        # fork: nothing has started a thread yet, and the child needs only this module.
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, hosts, feeds_per_host, latency_s), daemon=True
        )
        self.process.start()
        pairs, self.size = self.conn.recv()
        self.feeds = [Feed(name=name, url=url) for name, url in pairs]

    def ask(self, command: str) -> object:
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(timeout=30)


def baseline(feeds: list[Feed]) -> int:
    ok = 0
    with httpx.Client(trust_env=False, timeout=30) as client:
        for feed in feeds:
            resp = client.get(feed.url)
            ok += resp.status_code == 200 and len(feedparser.parse(resp.content).entries) == ITEMS_PER_FEED
    return ok


def monitor_poll(settings: Settings, feeds: list[Feed], states: dict[str, FeedState]) -> list:
    with NetworkSession(settings) as session:
        return session.poll(feeds, states)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50, help="hosts on 127.0.0.1 … 127.0.0.N (≤ 254)")
    parser.add_argument("--feeds-per-host", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be between 1 and 254 (127.0.0.0/8 only)")
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()

    servers = ServerProcess(args.hosts, args.feeds_per_host, args.latency_ms / 1000)
    feeds = servers.feeds
    log(
        f"{args.hosts} servers up in process {servers.process.pid}, {len(feeds)} feeds, {servers.size:.0f} B/feed"
    )
    try:
        log("baseline: sequential httpx.Client + feedparser …")
        t0 = time.perf_counter()
        base_ok = baseline(feeds)
        base_s = time.perf_counter() - t0
        log(f"baseline: {base_s:.2f} s, {base_ok}/{len(feeds)} ok, {len(feeds) / base_s:.1f} feeds/s")

        settings = Settings(
            fetch_allow=["127.0.0.0/8"], concurrency=64, per_host_concurrency=2, max_feed_bytes=MAX_BYTES
        )
        delay = settings.per_host_delay_s
        log(f"monitor: {settings.fetch_limits()}")
        servers.ask("reset")
        t0 = time.perf_counter()
        first = monitor_poll(settings, feeds, {})
        mon_s = time.perf_counter() - t0
        bytes_first, max_first = servers.ask("stats")
        first_ok = all(p.status is FetchStatus.OK and len(p.entries) == ITEMS_PER_FEED for p in first)
        statuses = {st.value: sum(p.status is st for p in first) for st in FetchStatus}
        log(
            f"monitor run 1: {mon_s:.2f} s, {len(feeds) / mon_s:.1f} feeds/s, {statuses}, max/host {max_first}"
        )
        for p in [p for p in first if p.status is not FetchStatus.OK or len(p.entries) != ITEMS_PER_FEED][:3]:
            log(f"  not ok: {p.feed.url}: {p.status} {len(p.entries)} entries, {p.error}")

        states = {
            p.feed.source_id: FeedState(
                source_id=p.feed.source_id, etag=p.fetch.etag, last_modified=p.fetch.last_modified
            )
            for p in first
        }
        servers.ask("reset")
        t0 = time.perf_counter()
        second = monitor_poll(settings, feeds, states)
        bytes_second, max_second = servers.ask("stats")
        second_nm = all(p.status is FetchStatus.NOT_MODIFIED for p in second)
        log(
            f"monitor run 2: {time.perf_counter() - t0:.2f} s, not modified: {second_nm}, max/host {max_second}"
        )
    finally:
        servers.stop()
    log(f"servers stopped; wall {time.perf_counter() - started:.1f} s")

    feeds_per_s, base_per_s = len(feeds) / mon_s, len(feeds) / base_s
    result = {
        "feeds": len(feeds),
        "hosts": args.hosts,
        "items_per_feed": ITEMS_PER_FEED,
        "latency_ms": args.latency_ms,
        "feeds_per_s": round(feeds_per_s, 2),
        "baseline_feeds_per_s": round(base_per_s, 2),
        "ratio": round(feeds_per_s / base_per_s, 2),
        "max_concurrent_per_host": max(max_first, max_second),
        "per_host_delay_s": delay,
        "first_run_ok": first_ok,
        "second_run_not_modified": second_nm,
        "bytes_first_run": bytes_first,
        "bytes_second_run": bytes_second,
        "bytes_ratio": round(bytes_second / bytes_first, 4) if bytes_first else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
