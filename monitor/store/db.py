"""Opening the database: file locks, migrations, transactions, and Arrow views for bulk writes."""

from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from monitor.store import ducklake
from monitor.store.ducklake import DuckLakeTarget

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t), padding.
_FLOCK = "hhqqi4x"
# A failed open with the file unlocked is retried this many times (the holder may have just
# let go) before the error is taken to be something other than a lock.
_UNLOCKED_RETRIES = 3
# Rows per row group in the files this monitor writes. At DuckDB's default (122,880) a table
# smaller than that is one row group, which every checkpoint (each batch's connection closing)
# rewrites whole: with 60k passages that was 2 s and 300 MB a batch, growing with the archive.
# At 2,048 a checkpoint rewrites at most 2,048 rows, so its cost stays flat (bench: 40 ms, 81 MB).
ROW_GROUP_SIZE = 2048
# The catalog name the monitor's file is attached under (``current_database()`` in queries).
CATALOG = "monitor"


class DatabaseBusy(RuntimeError):
    """Raised when another process holds the database file for longer than the lock timeout."""


class DatabaseOutdated(RuntimeError):
    """Raised when a read-only open finds a schema older than this code expects."""


class DatabaseMissing(FileNotFoundError):
    """Raised when a read-only open names a database file that does not exist."""


def lock_holder(path: Path | str) -> int | None:
    """The process holding a lock on a database file, or None when it is not locked.

    DuckDB locks its file with ``fcntl`` record locks; ``F_GETLK`` asks the kernel who
    holds one without taking or disturbing any lock.

    Returns:
        The holder's pid (``-1`` for an open-file-description lock), or None.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        lock_type, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, probe))
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if lock_type == fcntl.F_UNLCK else int(pid)


def describe_process(pid: int) -> str:
    """``pid 4242 (duckdb data/monitor.duckdb)`` from /proc where readable, else ``pid 4242``."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    command = " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)
    return f"pid {pid} ({command[:120]})" if command else f"pid {pid}"


@contextmanager
def connect(
    path: Path | str | DuckLakeTarget, *, read_only: bool = False, lock_timeout_s: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for one short write (or read) window, migrating it first.

    Retries while another process holds the file lock, so a flow waits for an
    analyst's query to finish instead of failing at once. A DuckLake store instead holds
    its write lock for a read-write window (:mod:`monitor.store.ducklake`); its readers
    never wait.

    Args:
        path: the database file, ``":memory:"``, or a DuckLake store.
        read_only: open without write access (no migrations are applied).
        lock_timeout_s: how long to keep retrying a held lock.

    Yields:
        An open connection, closed on exit.

    Raises:
        DatabaseBusy: the lock was still held after ``lock_timeout_s``.
        DatabaseMissing: ``read_only`` and the file does not exist.
    """
    if isinstance(path, DuckLakeTarget):
        with _ducklake(path, read_only, lock_timeout_s) as con:
            yield con
        return
    target = str(path)
    if target != ":memory:":
        if read_only and not Path(target).exists():
            raise DatabaseMissing(f"database not found: {target}")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    con = _open(target, read_only, lock_timeout_s)
    try:
        if not read_only:
            migrate(con)
        elif target != ":memory:":
            _check_schema(con, target)
        yield con
    finally:
        con.close()


# DuckLake stores this process has brought to the migrations' schema.
_LAKES_MIGRATED: set[DuckLakeTarget] = set()


@contextmanager
def _ducklake(
    target: DuckLakeTarget, read_only: bool, lock_timeout_s: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    if read_only:
        # Readers take no lock: each reads the snapshot committed when it began.
        with _lake_session(target, True) as con:
            _check_schema(con, str(target))
            yield con
        return
    with ducklake.write_lock(target, lock_timeout_s, DatabaseBusy), _lake_session(target, False) as con:
        if target not in _LAKES_MIGRATED:  # once per process, not in every write window
            ducklake.migrate(con, migration_names())
            _LAKES_MIGRATED.add(target)
        yield con


@contextmanager
def _lake_session(target: DuckLakeTarget, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    con = ducklake.session(target, read_only)
    try:
        yield con
    except duckdb.Error:
        ducklake.forget(target, read_only)  # a broken connection is not reused
        raise
    finally:
        con.close()


def migration_names() -> dict[int, str]:
    """Every migration's version and file name."""
    return {int(f.name.split("_", 1)[0]): f.name for f in MIGRATIONS.glob("*.sql")}


def _open(target: str, read_only: bool, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    unlocked_failures = 0
    while True:
        try:
            return _attach(target, read_only)
        except duckdb.IOException:
            holder = lock_holder(target) if target != ":memory:" else None
            if holder is None:
                unlocked_failures += 1
                if unlocked_failures > _UNLOCKED_RETRIES:
                    raise  # not a lock: a real I/O error (permissions, a corrupt or foreign file)
            elif time.monotonic() >= deadline:
                raise DatabaseBusy(
                    f"{target} is held open by {describe_process(holder)} (waited {lock_timeout_s:g} s). "
                    "DuckDB lets one process at a time open a database file that another writes; "
                    "close that session, or raise MONITOR_DB_LOCK_TIMEOUT_S"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _attach(target: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the file, attached with the monitor's row-group size.

    The row-group size is an ``ATTACH`` option, not a file property, so every writer must open
    the file this way; an analyst's plain ``duckdb.connect`` reads it the same.
    """
    if target == ":memory:":
        return duckdb.connect(target)
    con = duckdb.connect(":memory:")
    try:
        options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}" + (", READ_ONLY" if read_only else "")
        # ATTACH takes no parameters: the path goes in as a quoted literal.
        literal = "'" + target.replace("'", "''") + "'"
        con.execute(f"ATTACH {literal} AS {CATALOG} ({options})")
        con.execute(f"USE {CATALOG}")
    except BaseException:
        con.close()
        raise
    return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of ``con`` in the same catalog (a new cursor starts in the default one, not the file)."""
    (catalog,) = con.execute("SELECT current_database()").fetchone() or ("memory",)
    own = con.cursor()
    own.execute(f"USE {catalog}")
    return own


def _check_schema(con: duckdb.DuckDBPyConnection, target: str) -> None:
    latest = max(migration_names())
    try:
        row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except duckdb.CatalogException as exc:
        raise DatabaseOutdated(f"{target} is not a monitor database (no schema_migrations table)") from exc
    version = row[0] if row and row[0] is not None else 0
    if version < latest:
        raise DatabaseOutdated(
            f"{target} has schema version {version}, this monitor needs {latest}; "
            "the next `monitor run` (or any write) migrates it"
        )


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations from ``monitor/store/migrations`` in order.

    Returns:
        Versions applied by this call.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[int] = []
    for file in sorted(MIGRATIONS.glob("*.sql"), key=lambda f: f.name):
        version = int(file.name.split("_", 1)[0])
        if version in done:
            continue
        # Statements run one at a time: DuckDB 1.5 cannot commit several ALTERs of a table
        # that holds rows in one transaction. Every statement is idempotent (IF NOT EXISTS,
        # OR REPLACE), so a migration cut short is simply applied again on the next open.
        for statement in con.extract_statements(file.read_text(encoding="utf-8")):
            con.execute(statement)
        con.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [version, file.name, now_utc()],
        )
        applied.append(version)
    return applied


def now_utc() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: committed if it finishes, rolled back if anything raises."""
    con.execute("BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def insert_new(
    con: duckdb.DuckDBPyConnection,
    table: str,
    keys: Sequence[str],
    select: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert the rows of ``select`` whose key is not stored yet; the portable ``ON CONFLICT DO NOTHING``.

    DuckLake has no primary keys, so no statement can rely on a conflict: the new rows are
    picked by an anti-join on the key (the first of any duplicates within the batch wins),
    then inserted by name. On DuckLake this is exactly-once only because every write window
    holds the store's write lock (:mod:`monitor.store.ducklake`), so no other writer commits
    between the anti-join and the insert; on the DuckDB file the primary key backs it up.

    Args:
        con: the database.
        table: the target table (a constant of the storage package, never user input).
        keys: the columns that identify a row.
        select: a query producing the candidate rows with the target's column names.
        params: the query's parameters.
        returning: columns of the inserted rows to return.

    Returns:
        One tuple of ``returning`` values per inserted row (empty tuples when none are asked for).
    """
    match = " AND ".join(f"stored.{k} = incoming.{k}" for k in keys)
    fresh = con.execute(
        f"SELECT * FROM ({select}) AS incoming "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS stored WHERE {match}) "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)}) = 1",
        params,
    ).fetch_arrow_table()
    if fresh.num_rows == 0:
        return []
    with arrow_view(con, "_monitor_new_rows", fresh):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _monitor_new_rows")
    if not returning:
        return [()] * fresh.num_rows
    columns = [fresh.column(name).to_pylist() for name in returning]
    return list(zip(*columns, strict=True))


def changed(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
) -> int:
    """Run an ``UPDATE`` or ``DELETE`` and return how many rows it changed (DuckLake has no ``RETURNING``)."""
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    keys: Sequence[str],
    select: str,
    update: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
) -> None:
    """Insert the rows of ``select``, updating the stored row of a key that exists; portable to DuckLake.

    A ``MERGE`` needs no primary key, so the same statement serves the DuckDB file and DuckLake.

    Args:
        con: the database.
        table: the target table (a constant of the storage package).
        keys: the columns that identify a row.
        select: the incoming rows, named as the target's columns; they are ``excluded`` in ``update``.
        update: the ``SET`` list for a stored row, e.g. ``name = excluded.name``.
        params: the query's parameters.
    """
    match = " AND ".join(f"{table}.{k} = excluded.{k}" for k in keys)
    con.execute(
        f"MERGE INTO {table} USING ({select}) AS excluded ON {match} "
        f"WHEN MATCHED THEN UPDATE SET {update} "
        "WHEN NOT MATCHED THEN INSERT BY NAME",
        params,
    )


@contextmanager
def arrow_view(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[str]:
    """Expose an Arrow table to SQL as ``name`` for the duration of the block (bulk writes)."""
    con.register(name, table)
    try:
        yield name
    finally:
        con.unregister(name)
