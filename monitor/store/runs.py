"""Run records: one row per ingest run, with its process and its counts per stage."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import duckdb

from monitor.ingest.urls import stable_id
from monitor.store.db import now_utc
from monitor.store.lease import WriterLease

# Count columns of the runs table, stage by stage; a run's counts are written to these and nothing else.
RUN_COLUMNS = (
    "feeds_total", "feeds_ok", "feeds_not_modified", "feeds_failed", "entries_seen", "entries_new",
    "pages_fetched", "pages_failed", "articles_stored", "passages_stored", "matches_new",
    "alerts_new", "alerts_delivered", "passages_reused",
)  # fmt: skip


# Seconds columns of the runs table, one per stage, in the order of the stages.
STAGE_COLUMNS = (
    "poll_s",
    "fetch_s",
    "fetch_wait_s",
    "extract_s",
    "embed_s",
    "match_s",
    "store_s",
    "deliver_s",
    "publish_s",
    "total_s",
)


def process_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_run(con: duckdb.DuckDBPyConnection, lease: WriterLease, flow_run_id: str | None = None) -> str:
    """Record the start of a run and return its id; mark runs whose process is gone abandoned.

    Args:
        con: the database.
        lease: the writer lease the caller holds; while it is held no other monitor process
            writes, so a run still marked running belongs to a process that ended.
        flow_run_id: Prefect's id of the flow run, if any.

    Returns:
        The new run's id.
    """
    started = now_utc()
    run_id = f"{started:%Y%m%dT%H%M%S}-{stable_id(str(time.time_ns()))[:6]}"
    host = socket.gethostname()
    running = con.execute("SELECT run_id, pid, hostname FROM runs WHERE status = 'running'").fetchall()
    # A run on this host whose process still exists is left alone (it would be a writer that
    # bypassed the lease); every other run still marked running was killed.
    if lease.exclusive:
        gone = [
            rid for rid, pid, hostname in running
            if pid is None or hostname != host or pid == os.getpid() or not process_alive(pid)
        ]  # fmt: skip
    else:
        # Other workers write too: only a run of this host whose process is gone is known dead.
        gone = [rid for rid, pid, hostname in running if hostname == host and pid is not None
                and (pid == os.getpid() or not process_alive(pid))]  # fmt: skip
    if gone:
        con.execute(
            "UPDATE runs SET status = 'abandoned', error = 'process ended before the run finished' "
            "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
            [gone],
        )
    con.execute(
        "INSERT INTO runs (run_id, flow_run_id, started_at, status, pid, hostname, command) "
        "VALUES (?, ?, ?, 'running', ?, ?, ?)",
        [run_id, flow_run_id, started, lease.holder.pid, host, lease.holder.purpose],
    )
    return run_id


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    counts: Mapping[str, int],
    error: str | None = None,
    seconds: Mapping[str, float] | None = None,
) -> None:
    """Record a run's outcome, its per-stage counts and its per-stage durations.

    Raises:
        ValueError: a count or duration names no column of the runs table.
    """
    seconds = seconds or {}
    unknown = (set(counts) - set(RUN_COLUMNS)) | (set(seconds) - set(STAGE_COLUMNS))
    if unknown:
        raise ValueError(f"runs has no column(s) {sorted(unknown)}")
    names = sorted(counts)
    stages = sorted(seconds)
    # Column names are checked against RUN_COLUMNS and STAGE_COLUMNS above; values are parameters.
    assignments = "".join(f", {name} = ?" for name in [*names, *stages])
    con.execute(
        f"UPDATE runs SET finished_at = ?, status = ?, error = ?{assignments} WHERE run_id = ?",
        [
            now_utc(),
            status,
            error,
            *(int(counts[n]) for n in names),
            *(round(float(seconds[s]), 3) for s in stages),
            run_id,
        ],
    )


def record_publish(con: duckdb.DuckDBPyConnection, run_id: str, seconds: float) -> None:
    """Record how long refreshing the read copy took after a run."""
    con.execute("UPDATE runs SET publish_s = ? WHERE run_id = ?", [round(seconds, 3), run_id])
