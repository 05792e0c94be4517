"""prefect.yaml and flows/deployments.py declare the same deployments, and `prefect deploy --all` runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel

from flows.deployments import SCHEDULES
from monitor.demo import FEED_NAMES
from tests.conftest import REPO
from tests.rows import SAMPLE_ARTICLES

PREFECT_YAML = REPO / "prefect.yaml"


def config() -> PrefectYamlModel:
    return PrefectYamlModel.model_validate(yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8")))


def test_prefect_yaml_and_monitor_serve_declare_the_same_deployments() -> None:
    declared = {d.name: d for d in config().deployments}
    assert (
        set(declared)
        == {s.name for s in SCHEDULES}
        == {"ingest", "deliver", "digest", "rescore", "maintenance"}
    )
    for s in SCHEDULES:
        d = declared[s.name]
        module, _, function = d.entrypoint.partition(":")
        assert Path(module).stem == s.flow.fn.__module__.rsplit(".", 1)[-1] and function == s.flow.fn.__name__
        intervals = [x.interval for x in d.schedules if getattr(x, "interval", None)]
        crons = [x.cron for x in d.schedules if getattr(x, "cron", None)]
        assert intervals == ([timedelta(seconds=s.interval_s)] if s.interval_s else [])
        assert crons == ([s.cron] if s.cron else [])
        assert d.concurrency_limit == s.concurrency_limit == 1
        assert d.work_pool.name == "monitor"


def test_ingest_every_15_minutes_and_delivery_every_minute() -> None:
    declared = {d.name: d for d in config().deployments}
    assert [x.interval for x in declared["ingest"].schedules] == [timedelta(minutes=15)]
    assert [x.interval for x in declared["deliver"].schedules] == [timedelta(minutes=1)]
    assert declared["rescore"].schedules == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.mark.slow
def test_deploy_all_against_a_real_server_and_run_ingest_with_a_worker(
    tmp_path: Path, sample_site: str
) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "PREFECT_"))}
    env = {**base, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": api}  # fmt: skip
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        yaml.safe_dump(
            {"feeds": [{"name": n, "url": f"{sample_site}/feeds/{f}"} for f, n in FEED_NAMES.items()]}
        )
    )
    # The worker's environment configures every run (the scheduled deliver runs too): all in tmp_path.
    worker_env = {**env, "MONITOR_DB": str(tmp_path / "m.duckdb"), "MONITOR_FEEDS": str(feeds),
                  "MONITOR_TOPICS": str(REPO / "topics.yaml"), "MONITOR_FETCH_ALLOW": "127.0.0.1",
                  "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    worker = None
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "the Prefect server did not start"
                time.sleep(0.5)
        created = prefect(["work-pool", "create", "monitor", "--type", "process"], env)
        assert created.returncode == 0, created.stdout + created.stderr
        deployed = prefect(["--no-prompt", "deploy", "--all"], env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        for name in (
            "ingest/ingest",
            "deliver/deliver",
            "digest/digest",
            "rescore/rescore",
            "maintenance/maintenance",
        ):
            assert name in deployed.stdout, deployed.stdout
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "monitor"],
                                  env=worker_env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)  # fmt: skip
        run = prefect(["deployment", "run", "ingest/ingest", "--param", "poll_all=true", "--watch",
                       "--watch-timeout", "150"], env, timeout=200)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed" in run.stdout
    finally:
        for proc in (worker, server):
            if proc is not None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    # A worker in the middle of a scheduled run (deliver, every minute) on a busy
                    # machine may take longer to stop; what this test checks is already done.
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        articles = con.execute("SELECT count(*) FROM articles").fetchone()[0]
        runs = con.execute(
            "SELECT status, flow_run_id IS NOT NULL FROM runs WHERE status = 'completed'"
        ).fetchall()
    assert articles == SAMPLE_ARTICLES
    assert (("completed", True)) in runs
    assert elapsed < 180, f"took {elapsed:.0f} s"
