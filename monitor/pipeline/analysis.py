"""A batch's CPU work (extract, embed, match) as functions that can run in another process.

In one process, :func:`monitor.pipeline.stages.process` calls :func:`analyse` and stores the
result. On a compute cluster (``MONITOR_TASK_RUNNER=dask``) the same work is split in two
tasks that never touch the store, so a cluster worker needs only the model, on any machine:

    cluster: extract_on_worker(batch)                 → Extracted
    flow:    stored_vectors_for(extracted)            → vectors of passages already stored
    cluster: embed_on_worker(extracted, topics, known) → Analysed
    flow:    save(analysed)                           → one write window, as in one process

A cluster worker loads the encoders once (:func:`worker_routing`) and keeps them for
every later batch; encoders are never sent between processes (an OpenVINO model does not pickle).
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from monitor import store
from monitor.config import Settings
from monitor.matching.passages import Reuse, passage_keys
from monitor.matching.routing import Routing, load_routing
from monitor.models import Article, Match, PageFailure, Passage, Topic
from monitor.pipeline.extraction_worker import extract_pages
from monitor.pipeline.records import Downloaded, logger
from monitor.store.passages import stored_vectors

Vectors = Mapping[str, Mapping[str, np.ndarray]]  # encoder name → passage hash → vector


class Cluster(Protocol):
    """Where a run's extraction and embedding go when they leave the run's process.

    ``submit(fn, *args)`` starts ``fn(*args)`` on the cluster and returns a future with
    ``.result()``; ``capacity`` is how many batches the run keeps in flight there.
    """

    capacity: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` on the cluster; return its future."""
        ...


@dataclass(frozen=True)
class Extracted:
    """One batch after extraction: its articles, and every page of it that failed so far."""

    articles: list[Article]
    failures: list[PageFailure]  # download and extraction failures
    pages_fetched: int
    seconds: float


@dataclass(frozen=True)
class Analysed:
    """One batch ready to store: articles, their embedded passages, matches and failures."""

    articles: list[Article]
    passages: list[Passage]
    matches: list[Match]
    failures: list[PageFailure]
    pages_fetched: int
    passages_reused: int  # passages whose vectors came from the store, not the encoder
    seconds: dict[str, float]  # extract_s, embed_s, match_s


def extract(batch: Downloaded, in_worker: bool) -> Extracted:
    """Extract a downloaded batch's articles (``in_worker``: in the extraction worker process)."""
    started = time.monotonic()
    articles, failures = extract_pages(batch.pages, in_worker)
    return Extracted(articles, [*batch.failures, *failures], len(batch.pages), time.monotonic() - started)


def embed_and_match(
    settings: Settings, extracted: Extracted, routing: Routing, reuse: Callable[[str], Reuse]
) -> Analysed:
    """Embed an extracted batch (``reuse(model)`` supplies stored vectors) and match it to the topics."""
    clock = time.monotonic
    t0 = clock()
    found: set[str] = set()

    def remembering(model: str) -> Reuse:
        lookup = reuse(model)

        def known(hashes: Sequence[str]) -> Mapping[str, np.ndarray]:
            vectors = lookup(hashes)
            found.update(vectors)
            return vectors

        return known

    articles = extracted.articles
    passages = routing.embed(articles, settings.passage_words, settings.passage_overlap_words, remembering)
    t1 = clock()
    matches = routing.match(articles, passages)
    seconds = {"extract_s": extracted.seconds, "embed_s": t1 - t0, "match_s": clock() - t1}
    reused = sum(1 for p in passages if p.text_hash in found)
    return Analysed(articles, passages, matches, extracted.failures, extracted.pages_fetched, reused, seconds)


def analyse(settings: Settings, batch: Downloaded, routing: Routing) -> Analysed:
    """Extract, embed and match a batch in this process, reusing stored vectors of identical passages."""
    extracted = extract(batch, settings.extract_in_worker)
    return embed_and_match(settings, extracted, routing, lambda model: _StoredVectors(settings, model))


# --- on a cluster -------------------------------------------------------------------------


def settings_for_workers(settings: Settings) -> Settings:
    """The run's settings as a cluster worker gets them: without alert channels, the webhook
    secret, the catalog's connection string or the object store's keys (a worker needs none; the
    wire may be plain TCP)."""
    return settings.model_copy(
        update={
            "alert_urls": [],
            "alert_urls_secret": None,
            "webhook_secret": None,
            "ducklake_catalog": None,
            "s3_key_id": None,
            "s3_secret": None,
        }
    )


def extract_on_worker(settings: Settings, batch: Downloaded) -> Extracted:
    """Extract a batch in this process: a cluster worker is already a process of its own."""
    return extract(batch, in_worker=False)


def embed_on_worker(
    settings: Settings, extracted: Extracted, topics: list[Topic], known: Vectors
) -> Analysed:
    """Embed and match an extracted batch with this worker's encoders; ``known`` are stored vectors."""
    routing = worker_routing(settings, topics)
    return embed_and_match(settings, extracted, routing, lambda model: _Known(known.get(model, {})))


def worker_routing(settings: Settings, topics: Sequence[Topic]) -> Routing:
    """This process's routing for these settings and topics, loaded once and kept for later batches."""
    options = tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in settings.routing_options().items()
    )
    return _cached_routing(tuple(topics), options)


@functools.lru_cache(maxsize=1)
def _cached_routing(topics: tuple[Topic, ...], options: tuple[tuple[str, Any], ...]) -> Routing:
    return load_routing(list(topics), **dict(options))


def stored_vectors_for(
    settings: Settings, extracted: Extracted, routing: Routing
) -> dict[str, dict[str, Any]]:
    """Stored vectors of the passages of an extracted batch, by the encoder each article routes to.

    Read in the run's process, so that cluster workers need no access to the store.
    """
    documents: dict[str, list[tuple[str, str | None, str]]] = defaultdict(list)
    for a in extracted.articles:
        documents[routing.encoder_name_for(a.language)].append((a.article_id, a.title, a.text))
    words, overlap = settings.passage_words, settings.passage_overlap_words
    return {
        model: _StoredVectors(settings, model)([k[3] for k in passage_keys(group, words, overlap)])
        for model, group in documents.items()
    }


class _Known:
    """Vectors handed over with the batch, looked up by passage hash."""

    def __init__(self, vectors: Mapping[str, np.ndarray]) -> None:
        self.vectors = vectors

    def __call__(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return {h: self.vectors[h] for h in hashes if h in self.vectors}


class _StoredVectors:
    """Stored vectors of identical passages, looked up in a short read."""

    def __init__(self, settings: Settings, model: str) -> None:
        self.settings, self.model = settings, model

    def __call__(self, hashes: Sequence[str]) -> dict[str, Any]:
        try:
            # No waiting on a held lock: the write waits; this only saves encoder time.
            with store.connect(self.settings.store_target, lock_timeout_s=0.0) as con:
                return dict(stored_vectors(con, self.model, hashes))
        except store.DatabaseBusy as exc:
            # A held database means embedding these too, never losing the batch.
            logger.warning("stored vectors not looked up, embedding every passage: %s", exc)
            return {}
