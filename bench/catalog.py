"""Commit rate of DuckLake's PostgreSQL catalog with concurrent writers on this machine.

Run from the project root (a throw-away PostgreSQL server on 127.0.0.1; nothing else is contacted):

    .venv/bin/python bench/catalog.py [--writers 1,2,4] [--commits 100]

Two measures, each with 1, 2, 4 … writer processes started together:

``raw``      each writer keeps one DuckLake connection and commits ``--commits`` one-row inserts
             into a shared table, retrying a commit that conflicts: DuckLake's own optimistic
             commits, the ceiling of the catalog.
``windows``  each writer opens ``--commits`` monitor write windows (``store.connect``: the
             advisory write lock, ATTACH, the schema check, a one-row insert, commit, close):
             what the monitor's writes cost, serialised by the lock.

Prints one JSON line: per measure and writer count, commits/s in total, conflicts retried,
and the mean seconds per commit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _raw_writer(catalog: str, data: str, commits: int, start: Any, who: int) -> dict[str, float]:
    import duckdb

    from monitor.store import extensions

    con = duckdb.connect(":memory:")
    extensions.require(con, "ducklake")
    extensions.require(con, "postgres")
    con.execute(f"ATTACH 'ducklake:postgres:{catalog}' AS lake (DATA_PATH '{data}')")
    start.wait()
    conflicts, t0 = 0, time.perf_counter()
    for i in range(commits):
        while True:
            try:
                con.execute("INSERT INTO lake.commits VALUES (?, ?)", [who, i])
                break
            except duckdb.Error:
                conflicts += 1
    return {"seconds": time.perf_counter() - t0, "conflicts": conflicts}


def _window_writer(catalog: str, data: str, commits: int, start: Any, who: int) -> dict[str, float]:
    from monitor import store
    from monitor.store.ducklake import DuckLakeTarget

    target = DuckLakeTarget(catalog, data)
    start.wait()
    t0 = time.perf_counter()
    for i in range(commits):
        with store.connect(target) as con:
            con.execute(
                "INSERT INTO exports VALUES (current_date - ?::INTEGER, ?, 'bench', 0, now())", [i, f"w{who}"]
            )
    return {"seconds": time.perf_counter() - t0, "conflicts": 0}


def _measure(kind: str, writers: int, commits: int, pg: Any, root: Path) -> dict[str, Any]:
    from monitor import store
    from monitor.store.ducklake import DuckLakeTarget

    name = f"{kind}_{writers}"
    catalog = pg.create_database(name)
    data = root / name
    data.mkdir()
    target = DuckLakeTarget(catalog, str(data) + "/")
    with store.connect(target) as con:  # the monitor's schema, and the raw table
        con.execute("CREATE TABLE IF NOT EXISTS commits (writer INTEGER, i INTEGER)")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Barrier(writers)
    work = _raw_writer if kind == "raw" else _window_writer
    t0 = time.perf_counter()
    with ctx.Pool(writers) as pool:
        results = pool.starmap(work, [(catalog, target.data, commits, start, w) for w in range(writers)])
    wall = time.perf_counter() - t0
    slowest = max(r["seconds"] for r in results)
    total = writers * commits
    return {
        "writers": writers,
        "commits": total,
        "commits_per_s": round(total / slowest, 1),
        "conflicts_retried": int(sum(r["conflicts"] for r in results)),
        "mean_s_per_commit": round(sum(r["seconds"] for r in results) / total, 4),
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", default="1,2,4", help="writer counts, comma-separated")
    parser.add_argument("--commits", type=int, default=100, help="commits per writer")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.writers.split(",")]
    import tempfile

    from tests.postgres import running_postgres

    result: dict[str, Any] = {"cpus": os.cpu_count(), "commits_per_writer": args.commits}
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp, running_postgres() as pg:
        for kind in ("raw", "windows"):
            result[kind] = []
            for writers in counts:
                row = _measure(kind, writers, args.commits, pg, Path(tmp))
                print(f"{kind}: {row}", file=sys.stderr, flush=True)
                result[kind].append(row)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
