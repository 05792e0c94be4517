"""The writer lease: one writer per database, released however its holder ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from monitor import store
from monitor.store.lease import Holder, WriterLease, lease_is_free, lease_path, read_holder, writer_lease

HOLD_LEASE = """
import sys, time
from monitor.store.lease import writer_lease
with writer_lease(sys.argv[1], "holder in a test", 5):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LEASE, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_waits_then_fails_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    holder = hold(db, 30)
    try:
        started = time.monotonic()
        with (
            pytest.raises(store.WriterBusy, match=rf"pid {holder.pid} on .*\(holder in a test\)"),
            writer_lease(db, "me", 1),
        ):
            pass
        assert 0.9 <= time.monotonic() - started < 5
        assert not lease_is_free(db)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lease(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    holder = hold(db, 30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lease_is_free(db)
    with writer_lease(db, "next writer", 1) as lease:
        assert lease.holder.purpose == "next writer"
        recorded = read_holder(lease_path(db))
        assert recorded is not None and recorded.pid == os.getpid()


def test_a_writer_gets_the_lease_when_the_holder_finishes(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    holder = hold(db, 1.0)
    try:
        with writer_lease(db, "patient", 20):
            assert holder.poll() is not None  # the holder had to finish first
    finally:
        holder.wait()


def test_the_lease_is_reentrant_within_one_process(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with writer_lease(db, "outer", 1) as outer, writer_lease(db, "inner", 1) as inner:
        assert inner is outer
    assert lease_is_free(db)


def test_a_live_run_of_another_process_is_not_marked_abandoned(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with store.connect(tmp_path / "m.duckdb") as con:
            host = socket.gethostname()
            con.execute(
                "INSERT INTO runs (run_id, started_at, status, pid, hostname) VALUES "
                "('live', now(), 'running', ?, ?), ('dead', now(), 'running', 999999999, ?), "
                "('legacy', now(), 'running', NULL, NULL)",
                [sleeper.pid, host, host],
            )
            lease = WriterLease(tmp_path / "x", Holder(os.getpid(), host, "test", "now"))
            store.start_run(con, lease)
            status = dict(
                con.execute(
                    "SELECT run_id, status FROM runs WHERE run_id IN ('live', 'dead', 'legacy')"
                ).fetchall()
            )
            assert status == {"live": "running", "dead": "abandoned", "legacy": "abandoned"}
            sleeper.kill()
            sleeper.wait()
            store.start_run(con, lease)
            assert con.execute("SELECT status FROM runs WHERE run_id = 'live'").fetchone() == ("abandoned",)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lock_holder_names_the_process_holding_the_database(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    duckdb.connect(str(db)).close()
    assert store.lock_holder(db) is None
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}, read_only=True); print('open', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        assert store.lock_holder(db) == reader.pid
    finally:
        reader.kill()
        reader.wait()
