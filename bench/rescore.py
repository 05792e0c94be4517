"""Benchmark `monitor rescore` on a generated archive of stored articles.

Run from the project root (offline; loads the bundled embedding model):
    .venv/bin/python bench/rescore.py [--articles 100000] [--passages-per-article 3]
        [--db PATH] [--baseline-articles 2000] [--topics topics.yaml]

Generates a DuckDB database with Arrow bulk inserts: articles made of a few dozen
sentences (some naming Iran, for keyword gating), passage vectors = the real embedding
of a sentence + gaussian noise, ~1% of articles with one on-topic passage. Then measures
``rescore(con, matcher)`` over all articles against a naive per-article loop (one query
per article + ``TopicMatcher.score``) on a sample, and memory. Progress goes to stderr;
the last stdout line is a JSON object.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

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
from monitor.ingest.urls import stable_id
from monitor.matching.embedding import load_encoder
from monitor.matching.keywords import scoring_text
from monitor.matching.rescore import rescore
from monitor.matching.scoring import ArticleText, TopicMatcher
from monitor.matching.topics import load_topics
from monitor.store.db import arrow_view
from monitor.store.passages import vectors_array

ON_TOPIC = [
    "Iran test-launched a new ballistic missile with a range of 1,400 kilometres, state television reported.",
    "The Revolutionary Guards displayed a hypersonic missile they say can evade air defences.",
    "Tehran vowed to keep building missiles whatever sanctions the West imposes.",
    "Iranian state media showed footage of drones and missiles fired during a military exercise.",
    "Washington sanctioned a network that shipped missile components to Iran's defence ministry.",
    "Officials said Iran delivered short-range ballistic missiles to Russia for use in Ukraine.",
    "The Guards opened an underground missile city to cameras for the first time.",
    "Iran put a satellite into orbit with a solid-fuel rocket, raising Western concern about its missiles.",
    "Israel said it intercepted most of the missiles Iran fired overnight.",
    "European diplomats said Iran's missile tests defy the UN Security Council resolution.",
    "Iran's supreme leader said the country's missile programme is not up for negotiation.",
    "Negotiators from Iran and the United States met in Oman for indirect nuclear talks.",
    "Diplomats in Vienna said a return to the 2015 nuclear deal was within reach.",
    "Tehran demanded guarantees that Washington would not walk away from a revived agreement.",
    "The IAEA said Iran had expanded its stock of uranium enriched to 60 percent.",
    "France, Britain and Germany threatened to trigger the snapback of UN sanctions on Iran.",
    "Iran's foreign minister said sanctions relief must come before any limits on enrichment.",
    "The talks on restoring the Joint Comprehensive Plan of Action stalled over inspections.",
    "Iranian negotiators rejected a proposal to include missiles in a follow-on nuclear agreement.",
    "The White House said a new agreement must be longer and stronger than the JCPOA.",
    "Iran agreed to cap enrichment in exchange for the release of frozen assets, diplomats said.",
    # on-topic meaning without any keyword: scored keyword_penalty lower
    "The Guards paraded new medium-range missiles through the capital on army day.",
    "Negotiators said the nuclear accord could be restored if enrichment limits were accepted.",
    "The missile tests broke the terms of the UN resolution endorsing the nuclear agreement.",
]
OFF_TOPIC = [
    "The central bank left interest rates unchanged for the third meeting in a row.",
    "Heavy rain caused flooding across the region and closed several motorways.",
    "The club confirmed the signing of a striker on a four-year contract.",
    "Shares in technology companies rose after strong quarterly earnings.",
    "The city council approved a plan to build ten thousand new homes.",
    "Scientists reported a new treatment that slows the progression of the disease.",
    "Farmers protested against cuts to agricultural subsidies outside parliament.",
    "The airline cancelled dozens of flights because of a strike by air traffic controllers.",
    "Researchers found that the glacier is melting faster than previously thought.",
    "The minister announced new funding for hospitals and schools in rural areas.",
    "The company recalled thousands of cars because of a faulty brake component.",
    "Voters head to the polls on Sunday in a closely fought regional election.",
    "Wildfires forced the evacuation of several villages in the south.",
    "The government unveiled a plan to cut carbon emissions by half within a decade.",
    "Unemployment fell to its lowest level in fifteen years, official figures showed.",
    # near misses: negatives of the topics, or Iran but another subject
    "North Korea fired a ballistic missile that landed in the sea off Japan.",
    "India successfully tested its long-range Agni missile from an island off its east coast.",
    "Russia struck Ukrainian power stations with cruise missiles and drones overnight.",
    "Saudi Arabia and the United States discussed cooperation on civil nuclear power.",
    "North Korea dismissed calls to return to talks on denuclearisation.",
    "Iran's currency fell to a record low against the dollar as inflation climbed.",
    "Iranian voters went to the polls to elect a new parliament.",
    "Tehran's traffic and air pollution forced schools to close for two days.",
    "Iran's national football team qualified for the World Cup.",
    "An earthquake struck southern Iran, damaging hundreds of homes.",
]
NOISE = 0.02  # per dimension: a noisy copy keeps a cosine of about 0.93 to its sentence


def log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)


def generate(con, encoder, n_articles, per_article, started, chunk=10_000):
    """Insert articles and passages chunk by chunk with Arrow; return the passage count."""
    rng = np.random.default_rng(42)
    sentences = ON_TOPIC + OFF_TOPIC
    base, sentence_array = encoder.encode_passages(sentences), pa.array(sentences)
    words = np.array([len(s.split()) for s in sentences])
    total = 0
    for begin in range(0, n_articles, chunk):
        n = min(chunk, n_articles - begin)
        counts = rng.integers(1, 2 * per_article, n) if per_article > 1 else np.ones(n, dtype=np.int64)
        starts, owner = np.cumsum(counts) - counts, np.repeat(np.arange(n), counts)
        pick = rng.integers(len(ON_TOPIC), len(sentences), len(owner))  # off-topic sentences...
        topical = np.flatnonzero(rng.random(n) < 0.01)  # ...but 1% of articles get one on-topic passage
        pick[starts[topical] + rng.integers(0, counts[topical])] = rng.integers(
            0, len(ON_TOPIC), len(topical)
        )
        vectors = base[pick] + rng.standard_normal((len(owner), encoder.dim), dtype=np.float32) * NOISE
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        site = (begin + np.arange(n)) % 40
        urls = [f"https://news{site[i]}.example.com/story/{begin + i}" for i in range(n)]
        ids, picks = [stable_id(u) for u in urls], pick.tolist()
        seconds = rng.integers(0, 2 * 365 * 86_400, n).astype("timedelta64[s]")
        articles = pa.table(
            {
                "article_id": ids,
                "url": urls,
                "site": site,
                "title": [sentences[picks[s]].rstrip(".") for s in starts],
                "published_at": pa.array(np.datetime64("2024-01-01", "us") + seconds, pa.timestamp("us", "UTC")),
                "text": [" ".join(sentences[k] for k in picks[s : s + c]) for s, c in zip(starts, counts, strict=True)],
                "word_count": pa.array(np.add.reduceat(words[pick], starts), pa.int32()),
            }
        )  # fmt: skip
        passages = pa.table(
            {
                "article_id": pa.array(ids).take(pa.array(owner)),
                "seq": pa.array(np.arange(len(owner)) - starts[owner], pa.int32()),
                "text": sentence_array.take(pa.array(pick)),
                "embedding": vectors_array(vectors),
            }
        )
        con.execute("BEGIN")
        with arrow_view(con, "gen_articles", articles), arrow_view(con, "gen_passages", passages):
            con.execute(
                "INSERT INTO articles BY NAME SELECT * EXCLUDE (site), url AS canonical_url, "
                "'source-' || site AS source_id, 'News ' || site AS site_name, 'feed' AS date_method, "
                "'en' AS language, 'trafilatura' AS extract_method, 'bench' AS run_id, "
                "published_at + INTERVAL 15 MINUTE AS fetched_at FROM gen_articles"
            )
            con.execute("INSERT INTO passages BY NAME SELECT *, ? AS model FROM gen_passages", [encoder.name])
        con.execute("COMMIT")
        total += len(owner)
        log(f"generated {begin + n} articles, {total} passages", started)
    con.execute("CHECKPOINT")
    return total


def baseline(con, matcher, ids):
    """The naive way: one query per article, then score it alone. Returns its matches."""
    found = set()
    for article_id in ids:
        rows = con.execute(
            "SELECT embedding FROM passages WHERE article_id = ? ORDER BY seq", [article_id]
        ).fetchall()
        title, text, language = con.execute(
            "SELECT title, text, language FROM articles WHERE article_id = ?", [article_id]
        ).fetchone()
        vectors = np.array([r[0] for r in rows], dtype=np.float32)
        article = [ArticleText(scoring_text(title, text), language)]
        scores = matcher.score_articles(vectors, np.array([0]), article)
        found.update((article_id, s.topic.topic_id) for s in scores if s.flagged[0])
    return found


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:  # Linux
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--passages-per-article", type=int, default=3, help="mean; varies 1..2n-1")
    parser.add_argument("--db", type=Path, help="new database file (default: a temp file, deleted after)")
    parser.add_argument("--baseline-articles", type=int, default=2000)
    parser.add_argument("--topics", type=Path, default=Path("topics.yaml"))
    args = parser.parse_args()
    if args.db and args.db.exists():
        parser.error(f"{args.db} exists; pass a new path")
    started, tmp = time.monotonic(), None if args.db else Path(tempfile.mkdtemp(prefix="rescore-bench-"))
    path = args.db or tmp / "bench.duckdb"
    try:
        encoder = load_encoder()
        matcher = TopicMatcher(load_topics(args.topics), encoder)
        log(f"model and {len(matcher.topics)} topics loaded; generating {path}", started)
        with store.connect(path) as con:
            t0 = time.monotonic()
            passages = generate(con, encoder, args.articles, args.passages_per_article, started)
            generate_seconds = time.monotonic() - t0
        with store.connect(path) as con:
            rss_before = current_rss_mb()
            log(f"rescoring; RSS {rss_before:.0f} MB, peak so far {peak_rss_mb():.0f} MB", started)
            t0 = time.monotonic()
            summary = rescore(con, matcher, progress=lambda line: log(line, started))
            rescore_seconds, peak = time.monotonic() - t0, peak_rss_mb()
            log(f"rescore: {summary}; peak RSS {peak:.0f} MB", started)
            ids = [r[0] for r in con.execute("SELECT article_id FROM articles").fetchall()]
            rng = np.random.default_rng(7)
            sample = [
                ids[i] for i in rng.choice(len(ids), min(args.baseline_articles, len(ids)), replace=False)
            ]
            t0 = time.monotonic()
            naive = baseline(con, matcher, sample)
            baseline_seconds = time.monotonic() - t0
            with arrow_view(con, "sample_ids", pa.table({"article_id": sample})):
                sql = "SELECT article_id, topic_id FROM matches JOIN sample_ids USING (article_id)"
                stored = set(con.execute(sql).fetchall())
            log(
                f"baseline: {len(sample)} articles, {len(naive)} matches, same as rescore: {naive == stored}",
                started,
            )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    rescore_rate = summary["articles"] / rescore_seconds
    baseline_rate = len(sample) / baseline_seconds if sample else None
    log(f"done in {time.monotonic() - started:.1f}s", started)
    result = {
        "articles": summary["articles"], "passages": passages, "generate_seconds": round(generate_seconds, 2),
        "rescore_seconds": round(rescore_seconds, 2), "rescore_articles_per_s": round(rescore_rate),
        "baseline_articles": len(sample), "baseline_articles_per_s": baseline_rate and round(baseline_rate, 1),
        "ratio": baseline_rate and round(rescore_rate / baseline_rate, 1), "matches": summary["matches"],
        "rss_before_mb": round(rss_before), "peak_rss_mb": round(peak),
    }  # fmt: skip
    print(json.dumps(result))
    return 0 if naive == stored else 1


if __name__ == "__main__":
    sys.exit(main())
