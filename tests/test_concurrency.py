"""Analysts' SQL beside unattended ingest: nothing fails, and nothing is lost or stored twice.

Three processes at once: ingest runs again and again while its feed grows; an analyst runs
queries in a loop; another analyst holds one connection open on the read copy for over 30 s.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.cli.test_cli import MONITOR, _env
from tests.conftest import REPO
from tests.servers import ScriptedServer

pytestmark = pytest.mark.slow
WORDS = ["budget", "harbour", "council", "railway", "festival", "vaccine", "drought", "election", "tariff", "museum", "bridge", "orchestra", "glacier", "satellite", "vineyard", "ferry", "library", "marathon", "reservoir", "tram"]  # fmt: skip

LONG_READER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)   # one session on the read copy, held for 35 s
started = time.monotonic(); queries = 0
while time.monotonic() - started < 35:
    con.execute("SELECT count(*), max(length(text)) FROM articles CROSS JOIN range(200)").fetchall()
    queries += 1
    time.sleep(0.5)
print(queries, flush=True)
"""


def page(i: int) -> str:
    body = " ".join(
        f"Paragraph {j} of report {i} about the {WORDS[(i + j) % len(WORDS)]} in town number {i}."
        for j in range(40)
    )
    return f"<html><head><title>Report {i}</title></head><body><article><h1>Report {i}</h1><p>{body}</p></article></body></html>"


def growing_feed(server: ScriptedServer, total: int, step: int) -> tuple[str, list[int]]:
    """A feed that lists ``step`` more articles at each request, up to ``total``."""
    served: list[int] = []
    for i in range(total):
        server.add(f"/a/{i}.html", 200, page(i), Content_Type="text/html; charset=utf-8")

    def feed(handler: object) -> None:
        upto = min(total, step * (len(served) + 1))
        served.append(upto)
        items = "".join(
            f"<item><title>Report {i}</title><link>{server.base}/a/{i}.html</link></item>"
            for i in range(upto)
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Grows</title>{items}</channel></rss>'.encode()
        handler.send_response(200)  # type: ignore[attr-defined]
        handler.send_header("Content-Type", "application/rss+xml")  # type: ignore[attr-defined]
        handler.send_header("Content-Length", str(len(body)))  # type: ignore[attr-defined]
        handler.end_headers()  # type: ignore[attr-defined]
        handler.wfile.write(body)  # type: ignore[attr-defined]

    return server.add_handler("/feed.xml", feed), served


def test_ingest_again_and_again_beside_analysts_queries_and_a_long_session(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    copy = tmp_path / "m.read.duckdb"
    failures: list[str] = []
    with ScriptedServer() as server:
        url, _ = growing_feed(server, total=24, step=8)
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(yaml.safe_dump({"feeds": [{"name": "Grows", "url": url}]}))
        run = [
            *MONITOR,
            "run",
            "--all",
            "--feeds",
            str(feeds),
            "--db",
            str(db),
            "--topics",
            str(REPO / "topics.yaml"),
        ]
        ingest_done = threading.Event()

        def ingest_loop() -> None:
            for _ in range(3):
                proc = subprocess.run(run, env=_env(), capture_output=True, text=True, timeout=300)
                if proc.returncode != 0:
                    failures.append(f"ingest: {proc.stderr[-800:]}")
            ingest_done.set()

        def analyst_loop(counts: list[int]) -> None:
            while not db.exists():
                time.sleep(0.2)
            while not ingest_done.is_set():
                q = subprocess.run([*MONITOR, "sql", "--db", str(db), "--format", "csv", "-"],
                                   input="SELECT count(*) AS n FROM articles", env=_env(), capture_output=True,
                                   text=True, timeout=120)  # fmt: skip
                if q.returncode != 0:
                    failures.append(f"analyst: {q.stderr[-400:]}")
                else:
                    counts.append(int(q.stdout.splitlines()[1]))

        counts: list[int] = []
        threads = [
            threading.Thread(target=ingest_loop),
            threading.Thread(target=analyst_loop, args=(counts,)),
        ]
        for t in threads:
            t.start()
        while not copy.exists() and not ingest_done.is_set():
            time.sleep(0.5)
        long_reader = subprocess.run([sys.executable, "-c", LONG_READER, str(copy)], capture_output=True, text=True,
                                     timeout=120)  # fmt: skip
        for t in threads:
            t.join(timeout=600)
    assert failures == []
    assert long_reader.returncode == 0, long_reader.stderr
    assert int(long_reader.stdout) >= 30  # it kept querying its snapshot while runs went on
    assert len(counts) >= 3 and counts == sorted(counts)  # the analyst saw the archive grow, never shrink
    with duckdb.connect(str(db), read_only=True) as con:
        articles, distinct = con.execute(
            "SELECT count(*), count(DISTINCT canonical_url) FROM articles"
        ).fetchone()
        runs = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
    assert articles == distinct == 24
    assert runs == ["completed"] * 3


def test_monitor_sql_in_a_loop_beside_a_running_demo_never_errors(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    demo = subprocess.Popen([*MONITOR, "demo", "--db", str(db), "--port", "0", "--topics", str(REPO / "topics.yaml")],
                            env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    errors: list[str] = []
    queries = 0
    try:
        while not db.exists():
            assert demo.poll() is None, demo.stdout.read() if demo.stdout else ""
            time.sleep(0.1)
        while demo.poll() is None:
            q = subprocess.run([*MONITOR, "sql", "--db", str(db), "-"], input="SELECT count(*) FROM articles",
                               env=_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
            queries += 1
            if q.returncode != 0:
                errors.append(q.stderr)
    finally:
        if demo.poll() is None:
            demo.kill()
        demo.wait()
    assert demo.returncode == 0
    assert errors == [] and queries >= 3
