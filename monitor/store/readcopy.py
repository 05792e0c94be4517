"""The analysts' read copy: a snapshot of the live database, refreshed after each write burst, swapped atomically.

DuckDB lets one process at a time open a file that another process writes, and an open
reader blocks the writer. So analysts never open the live file: they open
``<db>.read.duckdb``. The writer (holding the writer lease) checkpoints the live file,
copies its bytes to a temporary file, builds the full-text index there, and renames it
over the read copy. A rename never disturbs a reader that has the old copy open: its
queries keep running on the snapshot it opened, and its next connection sees the new one.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

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


def fts_extension_file() -> Path | None:
    """The fts extension shipped by the ``duckdb-extension-fts`` package, if installed."""
    try:
        import duckdb_extension_fts
    except ImportError:
        return None
    root = Path(duckdb_extension_fts.__file__).parent / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/fts.duckdb_extension"))
    return found[0] if found else None


def load_fts(con: duckdb.DuckDBPyConnection) -> bool:
    """Load DuckDB's fts extension from the PyPI package (nothing is downloaded). Returns whether it loaded."""
    path = fts_extension_file()
    if path is None:
        return False
    # INSTALL from a file copies it into DuckDB's extension directory, where a later LOAD (or the
    # duckdb CLI's autoloading) finds it offline.
    con.execute(f"INSTALL '{path.as_posix()}'")  # a path from our own package, not user input
    con.execute("LOAD fts")
    return True


def build_fts_index(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the BM25 index over article titles and texts (``fts_main_articles.match_bm25``)."""
    con.execute(f"PRAGMA create_fts_index('{FTS_TABLE}', 'article_id', 'title', 'text', overwrite=1)")


def refresh_read_copy(db: Path | str, lock_timeout_s: float = 60.0, fts: bool = True) -> Refresh:
    """Publish a fresh read copy of the live database (call while holding the writer lease).

    Args:
        db: the live database file.
        lock_timeout_s: how long to wait for another process that holds the live file.
        fts: build the full-text index in the copy.

    Returns:
        What it cost.
    """
    db = Path(db)
    target = read_copy_path(db)
    started = time.monotonic()
    with connect(db, lock_timeout_s=lock_timeout_s) as con:
        con.execute("CHECKPOINT")  # everything into the main file, so its bytes are the whole database
    checkpointed = time.monotonic()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(db, tmp)
        copied = time.monotonic()
        with duckdb.connect(str(tmp)) as snap:
            (articles,) = snap.execute("SELECT count(*) FROM articles").fetchone() or (0,)
            if fts and articles and load_fts(snap):
                build_fts_index(snap)
            snap.execute("CHECKPOINT")
        indexed = time.monotonic()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return Refresh(
        path=target,
        articles=int(articles),
        bytes=target.stat().st_size,
        checkpoint_s=round(checkpointed - started, 3),
        copy_s=round(copied - checkpointed, 3),
        fts_s=round(indexed - copied, 3),
        seconds=round(time.monotonic() - started, 3),
    )
