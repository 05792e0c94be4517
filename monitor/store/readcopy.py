"""The analysts' read copy: a snapshot of the live database, refreshed after each write burst, swapped atomically.

DuckDB lets one process at a time open a file that another process writes, and an open
reader blocks the writer. So analysts never open the live file: they open
``<db>.read.duckdb``. The writer, holding the writer lease, checkpoints the live file and
copies its bytes to a temporary file (about a second per gigabyte); then, with the lease
released so that other writers go on, it builds the full-text index in the copy and
renames it over the read copy. A rename never disturbs a reader that has the old copy open: its
queries keep running on the snapshot it opened, and its next connection sees the new one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from monitor.store import extensions
from monitor.store.db import connect

FTS_TABLE = "articles"
FTS_SCHEMA = "fts_main_articles"


@dataclass(frozen=True)
class Refresh:
    """What one refresh of the read copy cost."""

    path: Path
    articles: int
    bytes: int
    checkpoint_s: float
    copy_s: float
    fts_s: float
    seconds: float


def read_copy_path(db: Path | str) -> Path:
    """Where a database's read copy lives: ``monitor.duckdb`` → ``monitor.read.duckdb`` beside it."""
    db = Path(db)
    return db.with_name(f"{db.stem}.read{db.suffix or '.duckdb'}")


def load_fts(con: duckdb.DuckDBPyConnection) -> bool:
    """Load DuckDB's fts extension from the PyPI package (nothing is downloaded). Returns whether it loaded."""
    return extensions.load(con, "fts")


def build_fts_index(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the BM25 index over article titles and texts (``fts_main_articles.match_bm25``)."""
    con.execute(f"PRAGMA create_fts_index('{FTS_TABLE}', 'article_id', 'title', 'text', overwrite=1)")


@dataclass(frozen=True)
class Snapshot:
    """A byte copy of the checkpointed live file, waiting to be indexed and published."""

    tmp: Path
    target: Path
    taken_at: str  # ISO time the snapshot was taken (publishing never replaces a newer one)
    checkpoint_s: float
    copy_s: float


def take_snapshot(db: Path | str, lock_timeout_s: float = 60.0) -> Snapshot:
    """Checkpoint the live database and copy its bytes (call while holding the writer lease; about 1 s per GB).

    Args:
        db: the live database file.
        lock_timeout_s: how long to wait for another process that holds the live file.

    Returns:
        The snapshot, to hand to :func:`publish_snapshot` once the lease is released.
    """
    db = Path(db)
    target = read_copy_path(db)
    started = time.monotonic()
    with connect(db, lock_timeout_s=lock_timeout_s) as con:
        con.execute("CHECKPOINT")  # everything into the main file, so its bytes are the whole database
    checkpointed = time.monotonic()
    taken_at = datetime.now(UTC).isoformat()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.time_ns()}.tmp")
    shutil.copyfile(db, tmp)
    return Snapshot(
        tmp, target, taken_at, round(checkpointed - started, 3), round(time.monotonic() - checkpointed, 3)
    )


def publish_snapshot(snapshot: Snapshot, fts: bool = True) -> Refresh:
    """Index a snapshot and rename it over the read copy (no writer lease needed; publishers take turns).

    A snapshot older than the published copy is discarded instead, so the copy never goes back in time.

    Args:
        snapshot: from :func:`take_snapshot`.
        fts: build the full-text index.

    Returns:
        What the refresh cost (``seconds`` counts the snapshot's checkpoint and copy too).
    """
    started = time.monotonic()
    stamp = snapshot.target.with_name(snapshot.target.name + ".snapshot")
    turn = os.open(
        snapshot.target.with_name(snapshot.target.name + ".publishing"), os.O_RDWR | os.O_CREAT, 0o644
    )
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)
        with duckdb.connect(str(snapshot.tmp)) as snap:
            (articles,) = snap.execute("SELECT count(*) FROM articles").fetchone() or (0,)
            if fts and articles and load_fts(snap):
                build_fts_index(snap)
            snap.execute("CHECKPOINT")
        indexed = time.monotonic()
        published = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else ""
        if published <= snapshot.taken_at:
            os.replace(snapshot.tmp, snapshot.target)
            stamp.write_text(snapshot.taken_at, encoding="utf-8")
    finally:
        snapshot.tmp.unlink(missing_ok=True)
        Path(f"{snapshot.tmp}.wal").unlink(missing_ok=True)
        os.close(turn)
    return Refresh(
        path=snapshot.target,
        articles=int(articles),
        bytes=snapshot.target.stat().st_size if snapshot.target.exists() else 0,
        checkpoint_s=snapshot.checkpoint_s,
        copy_s=snapshot.copy_s,
        fts_s=round(indexed - started, 3),
        seconds=round(snapshot.checkpoint_s + snapshot.copy_s + time.monotonic() - started, 3),
    )


def refresh_read_copy(db: Path | str, lock_timeout_s: float = 60.0, fts: bool = True) -> Refresh:
    """Snapshot and publish in one go (call while holding the writer lease).

    Args:
        db: the live database file.
        lock_timeout_s: how long to wait for another process that holds the live file.
        fts: build the full-text index in the copy.

    Returns:
        What it cost.
    """
    return publish_snapshot(take_snapshot(db, lock_timeout_s), fts=fts)
