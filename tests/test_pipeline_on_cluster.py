"""The pipeline's cluster path (``monitor.pipeline.analysis`` and the run's batches in flight), without Dask.

The cluster here is a real one of another kind: spawned worker processes that are handed
settings whose database does not exist, so any store access on a worker would fail the run.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import SecretStr

from monitor import pipeline, store
from monitor.config import Settings
from monitor.demo import FEED_NAMES
from monitor.pipeline import Stages
from tests.conftest import REPO
from tests.rows import SAMPLE_ARTICLES

pytestmark = pytest.mark.slow

NO_STORE = Path("/nonexistent/cluster-workers-have-no-store/m.duckdb")


class SpawnedCluster:
    """A :class:`monitor.pipeline.Cluster` of spawned processes, counting what the run keeps in flight."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = self.submitted = 0
        self.functions: list[str] = []
        self.secrets_seen: set[str] = set()

    def submit(self, fn: Any, *args: Any) -> Any:
        for a in args:
            if isinstance(a, Settings):
                secrets = [
                    a.webhook_secret and a.webhook_secret.get_secret_value(),
                    a.ducklake_catalog,
                    a.s3_key_id,
                    a.s3_secret and a.s3_secret.get_secret_value(),
                    *a.alert_urls,
                ]
                self.secrets_seen |= {s for s in secrets if s}
        hidden = [a.model_copy(update={"db": NO_STORE}) if isinstance(a, Settings) else a for a in args]
        with self.lock:
            self.in_flight += 1
            self.submitted += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.functions.append(fn.__name__)
        return _Counted(self, self.pool.submit(fn, *hidden))


class _Counted:
    def __init__(self, cluster: SpawnedCluster, future: concurrent.futures.Future[Any]) -> None:
        self.cluster, self.future = cluster, future

    def result(self) -> Any:
        value = self.future.result()
        with self.cluster.lock:
            self.cluster.in_flight -= 1
        return value


def _settings(tmp_path: Path, sample_site: str, name: str) -> Settings:
    feeds = [{"name": n, "url": f"{sample_site}/feeds/{file}"} for file, n in FEED_NAMES.items()]
    (tmp_path / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    return Settings(
        db=tmp_path / f"{name}.duckdb", feeds=tmp_path / "feeds.yaml", topics=REPO / "topics.yaml",
        fetch_allow=["127.0.0.1"], read_copy=False, batch_size=4,
    )  # fmt: skip


def _rows(db: Path) -> tuple[list[Any], list[Any], list[Any]]:
    with store.connect(db, read_only=True) as con:
        articles = con.execute("SELECT article_id, story_id FROM articles ORDER BY 1").fetchall()
        passages = con.execute(
            "SELECT article_id, seq, text_hash, model, embedding FROM passages ORDER BY 1, 2"
        ).fetchall()
        matches = con.execute("SELECT article_id, topic_id, score FROM matches ORDER BY 1, 2").fetchall()
    return articles, passages, matches


def test_a_cluster_run_stores_what_a_run_in_one_process_stores(tmp_path: Path, sample_site: str) -> None:
    here = _settings(tmp_path, sample_site, "here")
    alone = pipeline.run_ingest(here, poll_all=True)
    cluster = SpawnedCluster(capacity=3)
    try:
        there = _settings(tmp_path, sample_site, "there").model_copy(
            update={
                "webhook_secret": SecretStr("s3cret"),
                "ducklake_catalog": "host=127.0.0.1 password=s3cret",
                "s3_key_id": "lake-key",
                "s3_secret": SecretStr("lake-s3cret"),
            }
        )
        summary = pipeline.run_ingest(there, poll_all=True, stages=Stages(cluster=cluster))
    finally:
        cluster.pool.shutdown()
    batches = -(-SAMPLE_ARTICLES // 4)
    # Every batch went to the cluster twice (extract, then embed and match), never more than 3 at once.
    assert cluster.functions[:3] == ["extract_on_worker"] * 3
    assert (
        cluster.functions.count("extract_on_worker") == cluster.functions.count("embed_on_worker") == batches
    )
    assert 2 <= cluster.most_in_flight <= 3 and cluster.in_flight == 0
    assert cluster.secrets_seen == set()  # workers get no secret they do not need
    assert summary.counts["articles_stored"] == alone.counts["articles_stored"] == SAMPLE_ARTICLES
    assert summary.counts["matches_new"] == alone.counts["matches_new"] >= 6
    assert summary.seconds["embed_s"] > 0 and summary.seconds["extract_s"] > 0
    (a1, p1, m1), (a2, p2, m2) = _rows(here.db), _rows(there.db)
    assert a2 == a1
    assert [p[:4] for p in p2] == [p[:4] for p in p1]
    assert (
        max(float(np.abs(np.asarray(x[4]) - np.asarray(y[4])).max()) for x, y in zip(p1, p2, strict=True))
        < 1e-5
    )
    assert [m[:2] for m in m2] == [m[:2] for m in m1]
    assert max(abs(x[2] - y[2]) for x, y in zip(m1, m2, strict=True)) < 1e-5


def _sample_pages(slugs: tuple[str, ...]) -> list[Any]:
    from datetime import UTC, datetime

    from monitor.demo import site_root
    from monitor.ingest.urls import canonicalize
    from monitor.models import Entry, FetchResult, FetchStatus, PageFetch

    pages = []
    for slug in slugs:
        url = f"http://127.0.0.1:9/articles/{slug}.html"
        html = (site_root() / "articles" / f"{slug}.html").read_text(encoding="utf-8")
        entry = Entry("s", url, canonicalize(url), None, datetime(2026, 12, 1, tzinfo=UTC), None)
        body = html.replace("{{BASE}}", "http://127.0.0.1:9").encode()
        pages.append(PageFetch(entry, FetchResult(url, url, FetchStatus.OK, 200, "text/html", body)))
    return pages


def test_stored_vectors_are_looked_up_by_the_run_and_handed_to_the_worker(tmp_path: Path, encoder) -> None:
    from monitor.matching.routing import Routing
    from monitor.matching.topics import load_topics
    from monitor.pipeline.analysis import analyse, embed_on_worker, extract_on_worker, stored_vectors_for

    settings = Settings(db=tmp_path / "m.duckdb", topics=REPO / "topics.yaml")
    topics = load_topics(settings.topics)
    with store.connect(settings.db) as con:
        store.save_topics(con, topics)
    routing = Routing(topics, encoder)
    batch = pipeline.Downloaded(_sample_pages(("vienna-talks-resume-jcpoa", "north-korea-icbm-test")), [])
    first = analyse(settings, batch, routing)
    assert first.passages_reused == 0
    pipeline.save(settings, "run-1", first, routing.topics)

    extracted = extract_on_worker(settings, batch)
    known = stored_vectors_for(settings, extracted, routing)
    assert set(known) == {encoder.name}
    assert set(known[encoder.name]) == {p.text_hash for p in first.passages}
    # On the worker: no store (its settings name none that exists), every vector handed over.
    again = embed_on_worker(settings.model_copy(update={"db": NO_STORE}), extracted, topics, known)
    assert again.passages_reused == len(again.passages) == len(first.passages)
    assert [m.topic_id for m in again.matches] == [m.topic_id for m in first.matches] != []
    nothing_known = embed_on_worker(settings.model_copy(update={"db": NO_STORE}), extracted, topics, {})
    assert nothing_known.passages_reused == 0
    assert (
        max(abs(a.score - b.score) for a, b in zip(nothing_known.matches, first.matches, strict=True)) < 1e-5
    )
