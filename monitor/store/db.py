"""Opening the database: file locks, migrations, and Arrow views for bulk writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseBusy(RuntimeError):
    """Raised when another process holds the database for longer than the lock timeout."""


class DatabaseOutdated(RuntimeError):
    """Raised when a read-only open finds a schema older than this code expects."""


class DatabaseMissing(FileNotFoundError):
    """Raised when a read-only open names a database file that does not exist."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, lock_timeout_s: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for one short write (or read) window, migrating it first.

    Retries while another process holds the file lock, so a flow waits for an
    analyst's query to finish instead of failing at once.

    Args:
        path: the database file, or ``":memory:"``.
        read_only: open without write access (no migrations are applied).
        lock_timeout_s: how long to keep retrying a held lock.

    Yields:
        An open connection, closed on exit.

    Raises:
        DatabaseBusy: the lock was still held after ``lock_timeout_s``.
        DatabaseMissing: ``read_only`` and the file does not exist.
    """
    target = str(path)
    if target != ":memory:":
        if read_only and not Path(target).exists():
            raise DatabaseMissing(f"database not found: {target}")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(target, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusy(
                    f"{target} is locked by another process (waited {lock_timeout_s:g} s); "
                    "close other DuckDB sessions on it or query the snapshot file instead"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        if not read_only:
            migrate(con)
        elif target != ":memory:":
            _check_schema(con, target)
        yield con
    finally:
        con.close()


def _check_schema(con: duckdb.DuckDBPyConnection, target: str) -> None:
    latest = max(int(f.name.split("_", 1)[0]) for f in MIGRATIONS.glob("*.sql"))
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
    """Apply pending migrations from ``monitor/migrations`` in order.

    Returns:
        Versions applied by this call.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[int] = []
    files = sorted(
        MIGRATIONS.glob("*.sql"),
        key=lambda f: f.name,
    )
    for file in files:
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
    return datetime.now(UTC)


@contextmanager
def arrow_view(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[str]:
    con.register(name, table)
    try:
        yield name
    finally:
        con.unregister(name)
