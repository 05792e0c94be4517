"""One writer at a time, enforced by the monitor: two `monitor run` on one database, and a held lease."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml

from monitor import store
from monitor.demo import FEED_NAMES
from tests.cli.test_cli import MONITOR, _env
from tests.conftest import REPO
from tests.rows import SAMPLE_ARTICLES, SAMPLE_FEEDS

pytestmark = pytest.mark.slow


def feed_list(tmp_path: Path, base: str) -> Path:
    feeds = [{"name": name, "url": f"{base}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    feeds.insert(1, {"name": "Passwords", "url": "file:///etc/passwd"})
    feeds.append({"name": "World again", "url": f"{base}/feeds/world.xml"})
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    return path


def run_command(tmp_path: Path, feeds: Path) -> list[str]:
    db = tmp_path / "m.duckdb"
    return [
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


def test_two_runs_started_together_take_turns_and_both_succeed(tmp_path: Path, sample_site: str) -> None:
    feeds = feed_list(tmp_path, sample_site)
    env = _env(MONITOR_DB_LOCK_TIMEOUT_S="240")
    procs = [
        subprocess.Popen(
            run_command(tmp_path, feeds),
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=400) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        # One bad feed-list entry (and a duplicate) among good feeds: reported, and the run exits 0.
        assert proc.returncode == 0, out + err
        assert "feed #2 (Passwords)" in out + err and "not an http(s) URL" in out + err
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        runs = con.execute(
            "SELECT status, started_at, finished_at, pid FROM runs ORDER BY started_at"
        ).fetchall()
        articles = con.execute("SELECT count(*), count(DISTINCT canonical_url) FROM articles").fetchone()
        invalid = con.execute(
            "SELECT name, url, last_error FROM sources WHERE last_status = 'invalid' ORDER BY name"
        ).fetchall()
        ok = con.execute(
            "SELECT count(*) FROM sources WHERE last_status IN ('ok', 'not_modified')"
        ).fetchone()[0]
    assert [r[0] for r in runs] == ["completed", "completed"]  # neither was marked abandoned
    assert runs[0][2] <= runs[1][1], (
        "the two runs overlapped: the second wrote while the first held the lease"
    )
    assert {r[3] for r in runs} == {p.pid for p in procs}
    assert articles == (SAMPLE_ARTICLES, SAMPLE_ARTICLES)
    assert ok == SAMPLE_FEEDS
    assert [(n, u) for n, u, _ in invalid] == [
        ("Passwords", "file:///etc/passwd"),
        ("World again", f"{sample_site}/feeds/world.xml"),
    ]
    assert "not an http(s) URL" in invalid[0][2] and "duplicate of feed #1" in invalid[1][2]


def test_a_run_that_cannot_get_the_lease_exits_with_a_clear_message(tmp_path: Path, sample_site: str) -> None:
    feeds = feed_list(tmp_path, sample_site)
    with store.writer_lease(tmp_path / "m.duckdb", "an analyst's rescore", 5):
        proc = subprocess.run(
            run_command(tmp_path, feeds),
            env=_env(MONITOR_DB_LOCK_TIMEOUT_S="2"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "is being written by pid" in proc.stderr and "(an analyst's rescore)" in proc.stderr
    assert "waited 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr.split("monitor: run failed", 1)[-1]
    assert not (tmp_path / "m.duckdb").exists() or _runs(tmp_path) == []


def _runs(tmp_path: Path) -> list[tuple[str]]:
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        return con.execute("SELECT status FROM runs").fetchall()


def test_rescore_waits_for_the_lease_too(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db):
        pass
    with store.writer_lease(db, "monitor run", 5):
        proc = subprocess.run(
            [*MONITOR, "rescore", "--db", str(db), "--topics", str(REPO / "topics.yaml")],
            env=_env(MONITOR_DB_LOCK_TIMEOUT_S="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1
    assert "is being written by pid" in proc.stderr and "(monitor run)" in proc.stderr
