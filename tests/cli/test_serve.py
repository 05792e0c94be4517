"""`monitor serve`: every deployment on its schedule in one process, and a clean stop on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from tests.cli.test_cli import MONITOR, _env
from tests.conftest import REPO
from tests.rows import SAMPLE_ARTICLES

pytestmark = pytest.mark.slow


def completed_runs(db: Path) -> int:
    copy = db.with_name("m.read.duckdb")  # the read copy: reading it never disturbs the served runs
    if not copy.exists():
        return 0
    try:
        with duckdb.connect(str(copy), read_only=True) as con:
            return int(con.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()[0])
    except duckdb.Error:
        return 0


def test_serve_runs_ingest_on_schedule_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [*MONITOR, "serve", "--demo", "--db", str(db), "--topics", str(REPO / "topics.yaml"), "--ingest-every", "15",
         "--prefect-home", str(tmp_path / "prefect")],
        env=_env(), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while completed_runs(db) < 1:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "no ingest run completed"
            time.sleep(2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (tmp_path / "serve.log").read_text()
    assert "serving ingest, deliver, digest, rescore, maintenance" in output
    assert "monitor: stopped" in output
    port = int(output.split("starting a Prefect server on 127.0.0.1:", 1)[1].split(" ", 1)[0])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the Prefect server outlived serve"
    with duckdb.connect(str(db), read_only=True) as con:
        articles, with_passages = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.article_id)) "
            "FROM articles a"
        ).fetchone()
        statuses = {r[0] for r in con.execute("SELECT status FROM runs").fetchall()}
    assert articles == with_passages == SAMPLE_ARTICLES  # whole batches only
    assert "completed" in statuses and "running" not in statuses
