"""What the analysts' read copy costs as the archive grows: checkpoint, byte copy, full-text index.

Generates a store of N articles (realistic lengths: about 500 words and 4 passages of 384-d
vectors each) into a temporary directory, then refreshes its read copy the way every ingest
run does, and reports the seconds of each step and the sizes. The staleness an analyst sees is
at most the ingest interval plus one run plus one refresh.

    .venv/bin/python bench/readcopy.py --articles 10000
    .venv/bin/python bench/readcopy.py --articles 100000

Progress goes to stderr; the last stdout line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from monitor import store
from monitor.store.db import arrow_view
from monitor.store.passages import vectors_array
from monitor.store.readcopy import refresh_read_copy

VOCABULARY = [
    "the",
    "minister",
    "said",
    "talks",
    "would",
    "resume",
    "next",
    "week",
    "in",
    "the",
    "capital",
    "while",
    "officials",
    "warned",
    "that",
    "sanctions",
    "and",
    "inflation",
    "weighed",
    "on",
    "households",
    "as",
    "the",
    "council",
    "debated",
    "a",
    "budget",
    "for",
    "schools",
    "hospitals",
    "roads",
    "and",
    "ports",
    "and",
    "analysts",
    "expected",
    "the",
    "central",
    "bank",
    "to",
    "hold",
    "rates",
    "steady",
    "after",
    "exports",
    "rose",
    "and",
    "the",
    "harbour",
    "strike",
    "ended",
]


def log(line: str, started: float) -> None:
    print(f"[{time.monotonic() - started:8.1f}s] {line}", file=sys.stderr, flush=True)


def generate(db: Path, n_articles: int, started: float, chunk: int = 10_000) -> int:
    """Insert articles (about 500 words) and 4 passages each with random unit vectors; return the passage count."""
    rng = np.random.default_rng(7)
    vocab = np.array(VOCABULARY)
    passages_total = 0
    with store.connect(db) as con:
        for begin in range(0, n_articles, chunk):
            n = min(chunk, n_articles - begin)
            words = rng.integers(0, len(vocab), (n, 500))
            texts = [" ".join(vocab[row]) + f" report {begin + i}" for i, row in enumerate(words)]
            ids = [f"{begin + i:016x}" for i in range(n)]
            ts = pa.array(np.full(n, np.datetime64("2026-11-01", "us")), pa.timestamp("us", "UTC"))
            articles = pa.table({
                "article_id": ids, "canonical_url": [f"https://news{i % 50}.example/{i}" for i in range(begin, begin + n)],
                "url": [f"https://news{i % 50}.example/{i}" for i in range(begin, begin + n)],
                "source_id": [f"s{i % 50}" for i in range(begin, begin + n)], "title": [f"Report {i}" for i in range(begin, begin + n)],
                "published_at": ts, "date_method": ["feed"] * n, "language": ["en"] * n, "text": texts,
                "word_count": pa.array([500] * n, pa.int32()), "extract_method": ["trafilatura-precision"] * n,
                "fetched_at": ts, "run_id": ["bench"] * n,
            })  # fmt: skip
            vectors = rng.standard_normal((n * 4, 384), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            passages = pa.table({
                "article_id": np.repeat(np.array(ids), 4), "seq": pa.array(np.tile(np.arange(4), n), pa.int32()),
                "text": [texts[i // 4][:1100] for i in range(n * 4)], "embedding": vectors_array(vectors),
                "model": ["all-MiniLM-L6-v2"] * (n * 4),
            })  # fmt: skip
            with store.transaction(con), arrow_view(con, "a", articles), arrow_view(con, "p", passages):
                con.execute("INSERT INTO articles BY NAME SELECT * FROM a")
                con.execute("INSERT INTO passages BY NAME SELECT * FROM p")
            passages_total += n * 4
            log(f"generated {begin + n} articles", started)
    return passages_total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--no-fts", action="store_true", help="skip the full-text index")
    args = parser.parse_args()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="readcopy-bench-"))
    try:
        db = tmp / "bench.duckdb"
        passages = generate(db, args.articles, started)
        log("refreshing the read copy", started)
        refresh = refresh_read_copy(db, fts=not args.no_fts)
        log(f"refreshed: {refresh}", started)
        again = refresh_read_copy(db, fts=not args.no_fts)  # a second refresh: the steady-state cost
        result = {
            "articles": args.articles,
            "passages": passages,
            "db_mb": round(db.stat().st_size / 2**20, 1),
            "copy_mb": round(again.bytes / 2**20, 1),
            "checkpoint_s": again.checkpoint_s,
            "copy_s": again.copy_s,
            "fts_s": again.fts_s,
            "under_lease_s": round(again.checkpoint_s + again.copy_s, 3),
            "refresh_s": again.seconds,
            "first_refresh_s": refresh.seconds,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
