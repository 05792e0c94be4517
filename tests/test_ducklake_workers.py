"""Many workers on one DuckLake store: racing sharded workers, a killed worker, and queries/ on lake and file.

Each worker is a real ``monitor run`` process reporting to one real Prefect server, storing into
DuckLake on a real PostgreSQL catalog on 127.0.0.1 (``tests/postgres.py``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import yaml

from monitor import store
from monitor.store import ducklake
from monitor.store.ducklake import DuckLakeTarget
from tests.conftest import REPO
from tests.lake_site import LakeSite, serve_lake_site

MONITOR = [sys.executable, "-m", "monitor.cli"]


# ---------------------------------------------------------------- worker processes


def _feeds_file(site: LakeSite, path: Path) -> Path:
    feeds = [{"name": f"Lake feed {i}", "url": url} for i, url in enumerate(site.all_feed_urls())]
    path.write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    return path


def _lake_env(target: DuckLakeTarget, api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "PREFECT_API"))}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=api_url,
        MONITOR_FETCH_ALLOW="127.0.0.1",
        MONITOR_STORE="ducklake",
        MONITOR_DUCKLAKE_CATALOG=target.catalog,
        MONITOR_DUCKLAKE_DATA=target.data,
        MONITOR_READ_COPY="false",
        **extra,
    )
    return env


def _worker(shard: str, feeds: Path, workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [*MONITOR, "run", "--all", "--shard", shard, "--feeds", str(feeds), "--topics", str(REPO / "topics.yaml"),
               "--db", str(workdir / "unused.duckdb")]  # fmt: skip
    log = open(workdir / f"worker-{shard.replace('/', '-')}.log", "a", encoding="utf-8")  # noqa: SIM115
    return subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip


def _finish(proc: subprocess.Popen[str], workdir: Path, shard: str, timeout: float = 600) -> None:
    code = proc.wait(timeout=timeout)
    log = (workdir / f"worker-{shard.replace('/', '-')}.log").read_text(encoding="utf-8")
    assert code == 0, log[-3000:]


@pytest.fixture(scope="module")
def api_url(prefect_harness: None) -> str:
    """The session's Prefect API, which the worker processes report their flow runs to."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url
    return str(url)


def _exactly_once(con: duckdb.DuckDBPyConnection, site: LakeSite) -> dict[str, int]:
    """Assert the store holds each served page once; return its counts."""
    stored = con.execute("SELECT article_id, canonical_url, text_hash, story_id FROM articles").fetchall()
    aliases = {r[0]: r[1] for r in con.execute("SELECT alias_id, article_id FROM article_aliases").fetchall()}
    ids = [r[0] for r in stored]
    assert len(ids) == len(set(ids)), "an article id stored twice"
    assert len({r[1] for r in stored}) == len(stored), "a canonical URL stored twice"
    assert len({r[2] for r in stored}) == len(stored), "one text stored as two articles"
    # Every page a feed listed is an article or an alias of one, and never both.
    assert site.page_ids() <= set(ids) | set(aliases)
    assert not set(ids) & set(aliases)
    # The distinct texts: the originals and the rewrites; verbatim copies are aliases.
    assert len(stored) == len(site.originals) + len(site.rewrites)
    for table, key in (("passages", "article_id, seq"), ("matches", "article_id, topic_id"),
                       ("alerts", "alert_id"), ("sightings", "article_id, source_id"),
                       ("article_signatures", "article_id"), ("stories", "story_id"),
                       ("deliveries", "alert_id, channel_id")):  # fmt: skip
        (dupes,) = con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
        assert dupes == 0, f"duplicate rows in {table}"
    (orphans,) = con.execute(
        "SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.article_id)"
    ).fetchone()
    assert orphans == 0, "an article stored without its passages"
    # One alert per story and topic, however many copies matched.
    per_story = con.execute(
        "SELECT a.story_id, al.topic_id, count(*) FROM alerts al JOIN articles a USING (article_id) GROUP BY ALL"
    ).fetchall()
    assert per_story and all(n == 1 for _, _, n in per_story)
    return {"articles": len(stored), "aliases": len(aliases), "alerts": len(per_story)}


def _stories_cross_shards(con: duckdb.DuckDBPyConnection, site: LakeSite) -> None:
    # A page is an article or, when its copy arrived first, an alias of it: either has a story.
    story = dict(
        con.execute(
            "SELECT url, story_id FROM articles UNION ALL "
            "SELECT al.url, a.story_id FROM article_aliases al JOIN articles a USING (article_id)"
        ).fetchall()
    )
    for rewrite, original in site.rewrites.items():
        # The original and its rewrite arrived through feeds of different shards.
        assert story[site.url(rewrite)] == story[site.url(original)], rewrite


@pytest.fixture(scope="module")
def raced(postgres, api_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Two workers, one shard each, ingesting the lake site into one DuckLake store at the same time."""
    workdir = tmp_path_factory.mktemp("raced")
    target = DuckLakeTarget(postgres.create_database("raced"), str(workdir / "lake") + "/")
    with serve_lake_site(delay_s=0.05) as site:
        feeds = _feeds_file(site, workdir / "feeds.yaml")
        env = _lake_env(target, api_url, MONITOR_BATCH_SIZE="4")
        workers = {shard: _worker(shard, feeds, workdir, env) for shard in ("1/2", "2/2")}
        for shard, proc in workers.items():
            _finish(proc, workdir, shard)
        # The same corpus, one process, one DuckDB file: the reference for queries/.
        single = workdir / "single.duckdb"
        # The file publishes its read copy, with the full-text index analysts query.
        env_file = {k: v for k, v in env.items() if not k.startswith("MONITOR_DUCKLAKE")} | {
            "MONITOR_STORE": "duckdb", "MONITOR_READ_COPY": "true",
        }  # fmt: skip
        ref = subprocess.run([*MONITOR, "run", "--all", "--feeds", str(feeds), "--topics", str(REPO / "topics.yaml"),
                              "--db", str(single)], env=env_file, cwd=workdir, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
        assert ref.returncode == 0, ref.stderr[-3000:]
        # And one unsharded worker into a second lake, fed exactly as the file was: the same batches
        # too, since a batch's composition moves fp32 scores by ~1e-5, enough to flip a borderline match.
        sequential = DuckLakeTarget(postgres.create_database("sequential"), str(workdir / "sequential") + "/")
        seq = subprocess.run([*MONITOR, "run", "--all", "--feeds", str(feeds), "--topics", str(REPO / "topics.yaml"),
                              "--db", str(single)], env=_lake_env(sequential, api_url, MONITOR_BATCH_SIZE="4"),
                             cwd=workdir,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert seq.returncode == 0, seq.stderr[-3000:]
    return site, target, single, workdir, sequential


@pytest.mark.slow
def test_two_racing_workers_store_every_article_once_group_stories_and_alert_once(raced) -> None:
    site, target, single, workdir, _ = raced
    logs = {s: (workdir / f"worker-{s}.log").read_text(encoding="utf-8") for s in ("1-2", "2-2")}
    assert all("shard" in log for log in logs.values())
    with store.connect(target, read_only=True) as con:
        lake = _exactly_once(con, site)
        _stories_cross_shards(con, site)
        polled = Counter(r[0] for r in con.execute("SELECT count(*) FROM runs GROUP BY run_id").fetchall())
        assert sum(polled.values()) == 2
    with store.connect(single, read_only=True) as con:
        assert _exactly_once(con, site) == lake
        _stories_cross_shards(con, site)
    assert lake["aliases"] >= len(site.copies) and lake["alerts"] >= 4


@pytest.mark.slow
def test_a_worker_killed_inside_a_write_window_loses_and_duplicates_nothing_when_restarted(
    postgres, api_url: str, tmp_path: Path
) -> None:
    import psycopg

    target = DuckLakeTarget(postgres.create_database("killed"), str(tmp_path / "lake") + "/")
    with serve_lake_site(delay_s=0.05) as site:
        feeds = _feeds_file(site, tmp_path / "feeds.yaml")
        env = _lake_env(target, api_url, MONITOR_BATCH_SIZE="2")
        other = _worker("2/2", feeds, tmp_path, env)
        victim = _worker("1/2", feeds, tmp_path, env)
        # Wait for the victim's first batches to be committed, then hold the write lock so that
        # its next batch, downloaded, extracted and embedded, waits inside its write window.
        deadline = time.monotonic() + 300
        while True:
            assert victim.poll() is None, "the worker finished before it could be killed"
            try:
                with store.connect(target, read_only=True) as con:
                    (stored,) = con.execute(
                        "SELECT count(*) FROM articles WHERE run_id IN (SELECT run_id FROM runs WHERE pid = ?)",
                        [victim.pid],
                    ).fetchone()
            except (store.DatabaseOutdated, ducklake.DuckLakeError, duckdb.Error):
                stored = 0
            if stored >= 2:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with psycopg.connect(target.catalog, autocommit=True) as lock:
            lock.execute("SELECT pg_advisory_lock(%s)", [target.lock_key])
            time.sleep(4)  # the victim's next write now waits for the lock, its batch in memory
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(30)
        _finish(other, tmp_path, "2/2")
        with store.connect(target, read_only=True) as con:
            before = con.execute("SELECT count(*) FROM articles").fetchone()[0]
        restarted = _worker("1/2", feeds, tmp_path, env)
        _finish(restarted, tmp_path, "1/2")
        with store.connect(target, read_only=True) as con:
            after = _exactly_once(con, site)
            _stories_cross_shards(con, site)
            status = con.execute("SELECT status FROM runs WHERE pid = ?", [victim.pid]).fetchone()
    assert after["articles"] > before
    assert status == ("abandoned",)


@pytest.mark.slow
def test_two_racing_workers_on_an_s3_data_path_store_every_article_once_in_the_bucket(
    postgres, object_store, api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = object_store.create_bucket("lake-race")
    target = DuckLakeTarget(
        postgres.create_database("raced_s3"), f"s3://{bucket}/monitor/", object_store.access()
    )
    s3 = {"MONITOR_S3_ENDPOINT": object_store.url, "MONITOR_S3_KEY_ID": target.s3.key_id,
          "MONITOR_S3_SECRET": target.s3.secret}  # fmt: skip
    with serve_lake_site(delay_s=0.05) as site:
        feeds = _feeds_file(site, tmp_path / "feeds.yaml")
        env = _lake_env(target, api_url, MONITOR_BATCH_SIZE="4", **s3)
        workers = {shard: _worker(shard, feeds, tmp_path, env) for shard in ("1/2", "2/2")}
        for shard, proc in workers.items():
            _finish(proc, tmp_path, shard)
    with store.connect(target, read_only=True) as con:
        lake = _exactly_once(con, site)
        _stories_cross_shards(con, site)
    assert lake["articles"] == len(site.originals) + len(site.rewrites) and lake["alerts"] >= 4
    keys = object_store.keys(bucket, "monitor/")
    assert any(k.startswith("monitor/main/passages/") and k.endswith(".parquet") for k in keys), keys
    assert not list(tmp_path.glob("**/*.parquet"))  # nothing went to a local directory instead
    # Analysts read the bucket through the same settings.
    rows = _query_rows(monkeypatch, env, tmp_path / "unused.duckdb", REPO / "queries" / "new_matches_24h.sql")
    listed = {site.url(page) for pages in site.listing.values() for page in pages}
    assert rows and {r["url"] for r in rows} <= listed


@pytest.mark.slow
def test_an_unreachable_object_store_fails_the_run_naming_it_and_leaves_the_lake_as_it_was(
    postgres, object_store, closed_port: int, api_url: str, tmp_path: Path
) -> None:
    from tests.object_store import KEY_ID, SECRET

    bucket = object_store.create_bucket("lake-gone")
    target = DuckLakeTarget(
        postgres.create_database("dead_s3"), f"s3://{bucket}/monitor/", object_store.access()
    )
    with store.connect(target):
        pass  # a migrated lake, whose object store then becomes unreachable
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        yaml.safe_dump({"feeds": [{"name": "Quiet", "url": f"http://127.0.0.1:{closed_port}/f"}]})
    )
    env = _lake_env(target, api_url, MONITOR_S3_ENDPOINT=f"http://127.0.0.1:{closed_port}",
                    MONITOR_S3_KEY_ID=KEY_ID, MONITOR_S3_SECRET=SECRET)  # fmt: skip
    result = subprocess.run([*MONITOR, "run", "--all", "--feeds", str(feeds), "--topics", str(REPO / "topics.yaml"),
                             "--db", str(tmp_path / "u.duckdb")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("monitor: run failed") and f"127.0.0.1:{closed_port}" in last, last
    with store.connect(target, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (0,)  # its window rolled back
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


# ---------------------------------------------------------------- queries/ on both backends

QUERIES = sorted((REPO / "queries").glob("*.sql"))
# Columns computed from the run's clock (first-seen times), which differ between two runs.
CLOCK_COLUMNS = {"spread_hours"}
SEARCH = (
    "negotiators in Vienna trying to restore the 2015 nuclear deal, sanctions relief and uranium enrichment"
)


def _query_rows(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], db: Path, query: Path) -> list[dict]:
    """Rows of a curated query through ``monitor sql`` (the analysts' path), as JSON objects."""
    import io
    import json
    from contextlib import redirect_stdout

    from monitor import cli

    for name in [k for k in os.environ if k.startswith("MONITOR_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("MONITOR_"):
            monkeypatch.setenv(name, value)
    out = io.StringIO()
    argv = ["sql", "--db", str(db), "--format", "json", "--param", "days=3650",
            "--param", f"text={SEARCH}", str(query)]  # fmt: skip
    with redirect_stdout(out):
        code = cli.main(argv)
    assert code == 0, query.name
    return json.loads(out.getvalue() or "[]")


def _normalised(rows: list[dict], names: dict[str, str]) -> list[str]:
    """Rows as sortable strings, with times and run ids blanked and page identities named by ``names``."""
    import re as _re

    stamp = _re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d|^\d{8}T\d{6}-")
    inner_stamp = _re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?")
    out = []
    for row in rows:
        values = []
        for key in sorted(row):
            value = row[key]
            if key in CLOCK_COLUMNS or (isinstance(value, str) and stamp.match(value)):
                value = "<time>"
            elif isinstance(value, str):
                # Times inside text (a story's timeline) are the run's clock too.
                value = inner_stamp.sub("<time>", names.get(value, value))
            elif isinstance(value, float):
                value = round(value, 3)
            values.append(f"{key}={value}")
        out.append("|".join(values))
    return sorted(out)


def _identities(con: duckdb.DuckDBPyConnection, site: LakeSite) -> dict[str, str]:
    """Every article id, story id and URL → the site path of its page (stable across stores)."""
    names: dict[str, str] = {}
    for article_id, url, canonical, story in con.execute(
        "SELECT article_id, url, canonical_url, story_id FROM articles"
    ).fetchall():
        path = url.removeprefix(site.base)
        names.update({article_id: path, url: path, canonical: path})
        names.setdefault(story, f"story of {path}")
    return names


def _query_pair(monkeypatch, api_url: str, lake: DuckLakeTarget, single: Path, workdir: Path, query: Path):
    lake_rows = _query_rows(monkeypatch, _lake_env(lake, api_url), workdir / "single.duckdb", query)
    file_rows = _query_rows(monkeypatch, {"MONITOR_STORE": "duckdb"}, single, query)  # reads the read copy
    return lake_rows, file_rows


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_every_curated_query_returns_the_same_rows_on_the_lake_as_on_the_file(
    raced, api_url: str, monkeypatch: pytest.MonkeyPatch, query: Path
) -> None:
    site, _, single, workdir, sequential = raced
    lake, on_file = _query_pair(monkeypatch, api_url, sequential, single, workdir, query)
    with store.connect(sequential, read_only=True) as con:
        lake_names = _identities(con, site)
    with store.connect(single, read_only=True) as con:
        file_names = _identities(con, site)
    assert lake or query.name in ("errors.sql", "review_precision.sql"), f"{query.name} returned nothing"
    lake_rows, file_rows = _normalised(lake, lake_names), _normalised(on_file, file_names)
    only = sorted(set(lake_rows) - set(file_rows))[:2], sorted(set(file_rows) - set(lake_rows))[:2]
    assert lake_rows == file_rows, only


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_every_curated_query_runs_on_the_raced_lake_with_the_files_columns_and_row_count(
    raced, api_url: str, monkeypatch: pytest.MonkeyPatch, query: Path
) -> None:
    _, target, single, workdir, _ = raced
    lake, on_file = _query_pair(monkeypatch, api_url, target, single, workdir, query)
    # Which copy of a story arrived first differs between racing workers and one process, so
    # outlets' counts and first arrivals may differ; the rows' shape and number may not.
    assert len(lake) == len(on_file)
    assert [sorted(r) for r in lake] == [sorted(r) for r in on_file]
