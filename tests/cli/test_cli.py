"""The ``monitor`` command: help, sql, and run's behaviour on bad feeds, kills and reruns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from monitor import cli, store
from tests.conftest import REPO

MONITOR = [sys.executable, "-m", "monitor.cli"]


@pytest.fixture
def small_db(tmp_path: Path) -> Path:
    db = tmp_path / "m.duckdb"
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO sources (source_id, name, url, added_at, last_status) "
            "VALUES ('s1', 'Wire, Inc', 'http://x', now(), 'ok'), ('s2', 'Daily', 'http://y', now(), 'temporary')"
        )
    return db


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "demo", "sql"):
        assert command in out
    with pytest.raises(SystemExit):
        cli.main(["sql", "--help"])
    assert "--format" in capsys.readouterr().out


def test_sql_table_csv_json_and_stdin(small_db: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    query = tmp_path / "q.sql"
    query.write_text("-- comment\nSELECT name, last_status FROM sources ORDER BY name;\n", encoding="utf-8")
    assert cli.main(["sql", "--db", str(small_db), str(query)]) == 0
    table = capsys.readouterr().out
    assert "name" in table and "Wire, Inc" in table and "(2 rows)" in table
    assert cli.main(["sql", "--db", str(small_db), "--format", "csv", str(query)]) == 0
    assert capsys.readouterr().out.splitlines() == ["name,last_status", "Daily,temporary", '"Wire, Inc",ok']
    assert cli.main(["sql", "--db", str(small_db), "--format", "json", str(query)]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "Daily", "last_status": "temporary"},
        {"name": "Wire, Inc", "last_status": "ok"},
    ]
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("SELECT getvariable('n') AS n"))
    assert cli.main(["sql", "--db", str(small_db), "--format", "json", "--param", "n=7", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": "7"}]


def test_sql_is_read_only_and_reports_errors(small_db: Path, tmp_path: Path, capsys) -> None:
    write = tmp_path / "w.sql"
    write.write_text("DELETE FROM sources", encoding="utf-8")
    assert cli.main(["sql", "--db", str(small_db), str(write)]) == 1
    assert "read-only" in capsys.readouterr().err
    bad = tmp_path / "bad.sql"
    bad.write_text("SELEC 1", encoding="utf-8")
    assert cli.main(["sql", "--db", str(small_db), str(bad)]) == 1
    assert "SQL error" in capsys.readouterr().err
    assert cli.main(["sql", "--db", str(tmp_path / "missing.duckdb"), str(bad)]) == 1
    assert "database not found" in capsys.readouterr().err
    assert cli.main(["sql", "--db", str(small_db), str(tmp_path / "nofile.sql")]) == 2
    assert cli.main(["sql", "--db", str(small_db), "--param", "1x=2", str(bad)]) == 2
    with duckdb.connect(str(small_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (2,)


def test_run_with_invalid_feed_list_fails_fast(tmp_path: Path, capsys) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - name: X\n    url: ftp://example.invalid/feed\n", encoding="utf-8")
    assert cli.main(["run", "--feeds", str(feeds), "--db", str(tmp_path / "m.duckdb")]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err
    assert cli.main(["run", "--feeds", str(tmp_path / "none.yaml"), "--db", str(tmp_path / "m.duckdb")]) == 2
    assert "feed list not found" in capsys.readouterr().err


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "PREFECT_API"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", MONITOR_FETCH_ALLOW="127.0.0.1", **extra)
    return env


@pytest.mark.slow
def test_run_reports_each_failed_feed_and_is_bounded_by_timeouts(
    tmp_path: Path, scripted_server, closed_port
) -> None:
    from tests.servers import slow_drip

    scripted_server.add_handler("/drip.xml", slow_drip(interval_s=0.5))
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        yaml.safe_dump(
            {
                "feeds": [
                    {"name": "Dripping", "url": f"{scripted_server.base}/drip.xml"},
                    {"name": "Refused", "url": f"http://127.0.0.1:{closed_port}/rss"},
                    {"name": "Erroring", "url": scripted_server.add("/e.xml", 500)},
                ]
            }
        ),
        encoding="utf-8",
    )
    started = time.monotonic()
    proc = subprocess.run(
        [
            *MONITOR,
            "run",
            "--feeds",
            str(feeds),
            "--db",
            str(tmp_path / "m.duckdb"),
            "--topics",
            str(REPO / "topics.yaml"),
        ],
        env=_env(MONITOR_TOTAL_TIMEOUT_S="3"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert "all 3 feeds failed" in proc.stderr
    for name, reason in (
        ("Dripping", "timed out after 3 s"),
        ("Refused", "ConnectError"),
        ("Erroring", "HTTP 500"),
    ):
        assert f"{name}: {reason}" in proc.stderr
    assert elapsed < 60  # Prefect's temporary server start-up dominates; the feeds cost ~3 s


ARTICLE_SLUGS = [
    "vienna-talks-resume-jcpoa",
    "north-korea-icbm-test",
    "iran-unveils-solid-fuel-missile",
    "harbourside-united-late-winner",
    "iaea-access-snapback-deadline",
    "minho-floods-evacuations",
]


@pytest.mark.slow
def test_killed_run_rerun_leaves_no_duplicates_and_no_gaps(tmp_path: Path, scripted_server) -> None:
    """Kill a run mid-way (SIGKILL while batch 3 downloads), run again: every article once."""
    hang = {"armed": True}
    reached = threading.Event()
    for slug in ARTICLE_SLUGS:
        page = (REPO / f"monitor/demo/sample_site/articles/{slug}.html").read_text(encoding="utf-8")
        scripted_server.add(f"/articles/{slug}.html", 200, page.replace("{{BASE}}", scripted_server.base),
                            Content_Type="text/html; charset=utf-8")  # fmt: skip
    last = ARTICLE_SLUGS[-1]
    body = scripted_server.routes[f"/articles/{last}.html"].body

    def hanging(handler) -> None:
        if hang["armed"]:
            reached.set()
            time.sleep(30)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    scripted_server.add_handler(f"/articles/{last}.html", hanging)
    items = "".join(
        f"<item><title>{s}</title><link>{scripted_server.base}/articles/{s}.html</link></item>"
        for s in ARTICLE_SLUGS
    )
    rss = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>{items}</channel></rss>'
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        yaml.safe_dump({"feeds": [{"name": "Site", "url": scripted_server.add("/rss", 200, rss)}]})
    )
    db = tmp_path / "m.duckdb"
    cmd = [*MONITOR, "run", "--feeds", str(feeds), "--db", str(db), "--topics", str(REPO / "topics.yaml")]
    env = _env(MONITOR_BATCH_SIZE="2", MONITOR_TOTAL_TIMEOUT_S="60", MONITOR_READ_TIMEOUT_S="60")

    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        assert reached.wait(timeout=120), "the run never reached the third batch"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with store.connect(db, lock_timeout_s=10) as con:
        stored_before = [r[0] for r in con.execute("SELECT url FROM articles").fetchall()]
    # Batches before the hanging page committed whole; the hanging page's batch not at all.
    assert len(stored_before) % 2 == 0 and len(stored_before) < 6
    assert not any(url.endswith(f"{last}.html") for url in stored_before)

    hang["armed"] = False
    rerun = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        urls = [r[0] for r in con.execute("SELECT canonical_url FROM articles").fetchall()]
        matches, alerts = con.execute(
            "SELECT (SELECT count(*) FROM matches), (SELECT count(*) FROM alerts)"
        ).fetchone()
        runs = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
        articles_with_passages = con.execute("SELECT count(DISTINCT article_id) FROM passages").fetchone()[0]
    assert sorted(u.rsplit("/", 1)[-1] for u in urls) == sorted(f"{s}.html" for s in ARTICLE_SLUGS)
    assert len(urls) == len(set(urls)) == 6
    assert articles_with_passages == 6
    assert matches == alerts >= 3
    assert runs == ["abandoned", "completed"]
    delivered = (tmp_path / "m.alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len({json.loads(line)["alert_id"] for line in delivered}) == matches


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MONITOR_SHARD": "9/2"}, "monitor: invalid setting shard (MONITOR_SHARD): "),
        (
            {"MONITOR_STORE": "ducklake"},
            "monitor: invalid settings: store=ducklake needs MONITOR_DUCKLAKE_CATALOG",
        ),
        ({"MONITOR_STORE": "sqlite"}, "monitor: invalid setting store (MONITOR_STORE): "),
        (
            {"MONITOR_S3_KEY_ID": "lake-key"},
            "monitor: invalid settings: MONITOR_S3_KEY_ID and MONITOR_S3_SECRET go together",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["sql", "--list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err
