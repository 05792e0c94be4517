"""The ingest flow on a real Dask cluster through prefect-dask (``MONITOR_TASK_RUNNER=dask``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.ingest import ingest
from tests.conftest import REPO
from tests.flows.test_ingest import sample_feeds, write_feeds
from tests.rows import SAMPLE_ARTICLES

pytestmark = pytest.mark.slow


def test_the_default_task_runner_starts_and_imports_no_dask() -> None:
    probe = (
        "import sys\n"
        "from flows.cluster import compute_cluster\n"
        "import flows.ingest\n"
        "from monitor.config import Settings\n"
        "with compute_cluster(Settings()) as cluster:\n"
        "    print(cluster, 'distributed' in sys.modules, 'prefect_dask' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["None", "False", "False"]


def _run(tmp_path: Path, sample_site: str) -> Any:
    feeds = write_feeds(tmp_path / "feeds.yaml", sample_feeds(sample_site))
    state = ingest(
        db=str(tmp_path / "m.duckdb"), feeds=str(feeds), topics=str(REPO / "topics.yaml"),
        alerts_file=str(tmp_path / "alerts.jsonl"), fetch_allow=["127.0.0.1"], return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.message
    return state.result()


def _stored(db: Path) -> tuple[list[Any], list[Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        articles = con.execute("SELECT canonical_url FROM articles ORDER BY 1").fetchall()
        matches = con.execute(
            "SELECT a.canonical_url, m.topic_id FROM matches m JOIN articles a USING (article_id) ORDER BY 1, 2"
        ).fetchall()
    return articles, matches


def _task_run_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    return [f"{r.name.rsplit('-', 1)[0]}:{r.state_name}" for r in asyncio.run(read())]


def _flow_run_of(db: Path) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT flow_run_id FROM runs").fetchone()
    assert row is not None and row[0]
    return str(row[0])


def test_a_local_cluster_extracts_and_embeds_and_stores_what_threads_store(
    tmp_path: Path, prefect_harness: None, sample_site: str, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_TASK_RUNNER", "dask")
    monkeypatch.setenv("MONITOR_DASK_WORKERS", "1")
    monkeypatch.setenv("MONITOR_BATCH_SIZE", "8")
    monkeypatch.setenv("MONITOR_READ_COPY", "false")
    summary = _run(tmp_path, sample_site)
    assert summary.counts["articles_stored"] == SAMPLE_ARTICLES
    assert _stored(tmp_path / "m.duckdb") == _stored(sample_db)
    batches = -(-SAMPLE_ARTICLES // 8)
    names = _task_run_names(_flow_run_of(tmp_path / "m.duckdb"))
    for task_name in ("extract-batch", "embed-and-match-batch", "store-batch"):
        assert names.count(f"{task_name}:Completed") == batches, names
    assert not [n for n in names if n.startswith("process-batch")]


def test_a_running_scheduler_at_an_address_is_used_and_left_running(
    tmp_path: Path, prefect_harness: None, sample_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, LocalCluster

    def routings_loaded() -> int:
        from monitor.pipeline.analysis import _cached_routing

        return _cached_routing.cache_info().currsize

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert list(client.run(routings_loaded).values()) == [0]
        monkeypatch.setenv("MONITOR_TASK_RUNNER", "dask")
        monkeypatch.setenv("MONITOR_DASK_ADDRESS", cluster.scheduler_address)
        monkeypatch.setenv("MONITOR_READ_COPY", "false")
        summary = _run(tmp_path, sample_site)
        # The worker embedded the batches with the encoders it loaded itself, and kept them.
        assert list(client.run(routings_loaded).values()) == [1]
        assert len(client.scheduler_info()["workers"]) == 1  # the flow did not stop someone else's cluster
    assert summary.counts["articles_stored"] == SAMPLE_ARTICLES
    assert summary.counts["matches_new"] >= 6


def test_monitor_run_on_a_local_cluster_with_no_prefect_server(tmp_path: Path, sample_site: str) -> None:
    # Prefect's temporary API for the run, which the cluster's workers must report their task runs to.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "PREFECT_API"))}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_HOME=str(tmp_path / "prefect"),
        MONITOR_FETCH_ALLOW="127.0.0.1", MONITOR_TASK_RUNNER="dask", MONITOR_READ_COPY="false",
    )  # fmt: skip
    feeds = write_feeds(tmp_path / "feeds.yaml", sample_feeds(sample_site))
    db = tmp_path / "m.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--all", "--feeds", str(feeds), "--db", str(db),
         "--topics", str(REPO / "topics.yaml")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "extracting and embedding on Dask (a local cluster of 1 workers)" in proc.stderr
    assert f"{SAMPLE_ARTICLES} articles" in proc.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (SAMPLE_ARTICLES,)


def test_an_unreachable_scheduler_is_a_clear_error_before_the_run_touches_the_store(closed_port: int) -> None:
    from flows.cluster import compute_cluster
    from monitor.config import Settings

    address = f"tcp://127.0.0.1:{closed_port}"
    with (
        pytest.raises(OSError, match=f"connect to {address}"),
        compute_cluster(Settings(task_runner="dask", dask_address=address)),
    ):
        pytest.fail("a cluster that cannot be reached was handed to the run")
