"""Worker scaling on DuckLake: the corpus ingested by one worker process, then by N sharded ones.

Called by ``bench/pipeline.py --workers N``. A throw-away PostgreSQL server on 127.0.0.1 holds
each phase's DuckLake catalog (a fresh database per phase) and a temp directory its Parquet
files; a temporary Prefect API serves both phases. Each worker is a real ``monitor run --all``
process (``--shard K/N`` when N > 1), started together; a phase's wall clock runs from the
first start to the last exit, so it includes each worker's start-up (imports, model load),
which ``worker_startup_s`` reports on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.corpus import Corpus, CorpusServers

ROOT = Path(__file__).resolve().parent.parent


def _phase(
    label: str, workers: int, catalog: str, workdir: Path, feeds: Path, api_url: str, log: Any
) -> dict[str, Any]:
    from monitor import store
    from monitor.store.ducklake import DuckLakeTarget

    data = workdir / f"lake-{workers}"
    data.mkdir()
    target = DuckLakeTarget(catalog, str(data) + "/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_STORE", "MONITOR_DUCKLAKE"))}
    env.update(PREFECT_API_URL=api_url, MONITOR_STORE="ducklake", MONITOR_DUCKLAKE_CATALOG=catalog,
               MONITOR_DUCKLAKE_DATA=target.data, MONITOR_FETCH_ALLOW="127.0.0.0/8")  # fmt: skip
    with store.connect(target):
        pass  # the schema exists before the clock starts, as on a deployed store
    procs = []
    started = time.perf_counter()
    for k in range(1, workers + 1):
        command = [sys.executable, "-m", "monitor.cli", "run", "--all", "--feeds", str(feeds),
                   "--topics", str(ROOT / "topics.yaml"), "--db", str(workdir / f"unused-{workers}.duckdb")]  # fmt: skip
        if workers > 1:
            command += ["--shard", f"{k}/{workers}"]
        out = open(workdir / f"{label}-worker-{k}.log", "w", encoding="utf-8")  # noqa: SIM115
        procs.append(
            (subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT), out)
        )
    codes = []
    for proc, out in procs:
        codes.append(proc.wait())
        out.close()
    seconds = time.perf_counter() - started
    with store.connect(target, read_only=True) as con:
        runs = con.execute(
            "SELECT started_at, finished_at, total_s, store_s, embed_s, pages_fetched FROM runs"
        ).fetchall()
        (articles,) = con.execute("SELECT count(*) FROM articles").fetchone() or (0,)
        (aliases,) = con.execute("SELECT count(*) FROM article_aliases").fetchone() or (0,)
    first_start = min(r[0] for r in runs)
    last_end = max(r[1] for r in runs if r[1] is not None)
    runs_span = (last_end - first_start).total_seconds()
    pages = sum(r[5] or 0 for r in runs)
    log(
        f"{label}: {workers} worker(s), {pages} pages in {seconds:.1f} s (runs span {runs_span:.1f} s), exit {codes}"
    )
    return {
        "workers": workers,
        "exit_codes": codes,
        "seconds": round(seconds, 1),
        "runs_span_s": round(runs_span, 1),
        "worker_startup_s": round(seconds - runs_span, 1),
        "pages_fetched": pages,
        "articles": articles,
        "aliases": aliases,
        "articles_per_s": round((articles + aliases) / seconds, 3),
        "articles_per_s_runs": round((articles + aliases) / runs_span, 3),
        "store_s_per_worker": [round(r[3] or 0, 1) for r in runs],
        "embed_s_per_worker": [round(r[4] or 0, 1) for r in runs],
        "target": target,
    }


def bench_workers(
    args: argparse.Namespace, corpus: Corpus, servers: CorpusServers, workdir: Path, feeds: Path, log: Any
) -> dict[str, Any]:
    """One worker, then ``args.workers`` sharded workers, on fresh DuckLake stores; both throughputs and the ratio."""
    sys.path.insert(0, str(ROOT))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from tests.postgres import running_postgres

    desc = corpus.describe()
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(running_postgres())
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        api_url = str(PREFECT_API_URL.value())
        log(f"PostgreSQL on 127.0.0.1:{pg.port}, Prefect API {api_url}")
        one = _phase("one", 1, pg.create_database("one_worker"), workdir, feeds, api_url, log)
        many = _phase("many", args.workers, pg.create_database("n_workers"), workdir, feeds, api_url, log)
    ok = all(
        p["articles"] == desc["distinct_texts"]
        and p["articles"] + p["aliases"] == desc["pages"]
        and not any(p["exit_codes"])
        for p in (one, many)
    )
    for phase in (one, many):
        phase.pop("target")
    return {
        "workers": args.workers,
        "one_worker": one,
        "n_workers": many,
        "ratio": round(many["articles_per_s"] / one["articles_per_s"], 3),
        "ratio_runs": round(many["articles_per_s_runs"] / one["articles_per_s_runs"], 3),
        "cpus": os.cpu_count(),
        "checks": {"articles_ok": ok, "articles_expected": desc["distinct_texts"], "pages": desc["pages"]},
    }
