"""The DuckLake backend: many workers, one store (a PostgreSQL catalog plus Parquet data files).

DuckLake has no primary keys, so nothing here can rest on ``ON CONFLICT``. Exactly-once
rests instead on one rule: **every write window holds the store's write lock**, a
PostgreSQL advisory lock in the catalog database. A window takes the lock, then begins its
DuckLake transaction, so it sees every commit made before; it decides what is new by
anti-joins on the same keys the DuckDB file declares (:func:`monitor.store.db.insert_new`),
commits, and lets go. Two windows never interleave, so two workers that fetched the same
article (or two syndicated copies) store it once, join it to one story and queue one alert
per story and topic, exactly as one process would. PostgreSQL frees the lock of a
connection whose process died, so a killed worker never blocks the others, and its
uncommitted window leaves nothing behind.

The compute (downloads, extraction, embedding, matching) runs outside the lock, in
parallel on every worker; only the short writes queue (see the README's topology section).

The schema is the DuckDB file's, derived from the same migrations: each table with the
same columns and defaults, minus the constraints DuckLake cannot hold (keys; fixed-size
arrays become lists), and the same views.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

from monitor.store import extensions

CATALOG = "monitor"
# Advisory-lock keys are bigints; this one is derived from a fixed name and the data path,
# so two stores sharing one PostgreSQL database do not share a lock.
_LOCK_NAME = "news-coverage-monitor write window"
_FIXED_ARRAY = re.compile(r"\[\d+\]$")


class DuckLakeError(RuntimeError):
    """Raised when the DuckLake store cannot be opened (catalog unreachable, extension missing)."""


# Data paths DuckDB reads through httpfs rather than the local file system.
OBJECT_STORE_SCHEMES = ("s3://", "gs://", "r2://", "https://")


@dataclass(frozen=True)
class S3Access:
    """How DuckDB reaches an S3-compatible object store (MinIO, Ceph, R2, AWS S3).

    Attributes:
        key_id: the access key id.
        secret: the secret access key (never printed: excluded from repr).
        endpoint: ``host:port`` of the service; None: AWS S3 itself.
        region: the bucket's region.
        url_style: ``path`` (bucket in the path, what MinIO and most self-hosted services
            expect) or ``vhost`` (bucket in the host name, AWS's default).
        use_ssl: HTTPS to the endpoint.
    """

    key_id: str
    secret: str = field(repr=False)
    endpoint: str | None = None
    region: str = "us-east-1"
    url_style: str = "vhost"
    use_ssl: bool = True


@dataclass(frozen=True)
class DuckLakeTarget:
    """Where a DuckLake store lives.

    Attributes:
        catalog: a libpq connection string for the PostgreSQL catalog database
            (``host=127.0.0.1 port=5432 dbname=monitor user=monitor``).
        data: the data path for Parquet files: a local directory or an ``s3://`` URL.
        s3: credentials for an ``s3://`` data path; None: DuckDB's own secrets, if any
            (``CREATE PERSISTENT SECRET``), are what it uses.
    """

    catalog: str
    data: str
    s3: S3Access | None = None

    def __str__(self) -> str:
        masked = re.sub(r"(password\s*=\s*)\S+", r"\1***", self.catalog)
        endpoint = f" at {self.s3.endpoint}" if self.s3 and self.s3.endpoint else ""
        return f"ducklake (catalog {masked}, data {self.data}{endpoint})"

    @property
    def on_object_store(self) -> bool:
        """Whether the data path is an object-store URL (read and written through httpfs)."""
        return self.data.startswith(OBJECT_STORE_SCHEMES)

    @property
    def lock_key(self) -> int:
        """The advisory-lock key of this store's write window (a signed 64-bit integer)."""
        digest = hashlib.sha256(f"{_LOCK_NAME}\0{self.data}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _create_s3_secret(con: duckdb.DuckDBPyConnection, s3: S3Access, scope: str) -> None:
    """A temporary DuckDB secret (this connection only, never written to disk) for the data path."""
    options = {
        "KEY_ID": _quote(s3.key_id),
        "SECRET": _quote(s3.secret),
        "REGION": _quote(s3.region),
        "URL_STYLE": _quote(s3.url_style),
        "USE_SSL": "true" if s3.use_ssl else "false",
        "SCOPE": _quote(scope),
    }
    if s3.endpoint:
        options["ENDPOINT"] = _quote(s3.endpoint)
    # CREATE SECRET takes no parameters: the settings' strings go in as quoted literals.
    con.execute(
        "CREATE TEMPORARY SECRET monitor_lake_s3 (TYPE s3, "
        + ", ".join(f"{key} {value}" for key, value in options.items())
        + ")"
    )


def attach(target: DuckLakeTarget, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the DuckLake store.

    Raises:
        DuckLakeError: an extension is missing, or the catalog or data path cannot be opened.
    """
    con = duckdb.connect(":memory:")
    try:
        for name in ("ducklake", "postgres"):
            extensions.require(con, name)
        if target.on_object_store:
            extensions.require(con, "httpfs")
            if target.s3 is not None:
                _create_s3_secret(con, target.s3, target.data)
        options = f"DATA_PATH {_quote(target.data)}" + (", READ_ONLY" if read_only else "")
        # ATTACH takes no parameters: the settings' strings go in as quoted literals.
        con.execute(f"ATTACH {_quote('ducklake:postgres:' + target.catalog)} AS {CATALOG} ({options})")
        con.execute(f"USE {CATALOG}")
    except extensions.ExtensionMissing as exc:
        con.close()
        raise DuckLakeError(str(exc)) from exc
    except duckdb.Error as exc:
        con.close()
        raise DuckLakeError(f"cannot open {target}: {exc}") from exc
    except BaseException:
        con.close()
        raise
    return con


# One attached connection per store and mode in a process: attaching loads the catalog
# (about 0.3 s), so write windows take cursors of it instead of attaching each time.
_ATTACHED: dict[tuple[DuckLakeTarget, bool], duckdb.DuckDBPyConnection] = {}
_ATTACHED_LOCK = threading.Lock()


def session(target: DuckLakeTarget, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A cursor on this process's connection to the store, in the store's catalog.

    Each statement (or explicit transaction) reads the latest committed snapshot, so a cursor
    of a long-lived connection sees other workers' commits as a fresh attach would.

    Raises:
        DuckLakeError: the store cannot be attached.
    """
    key = (target, read_only)
    with _ATTACHED_LOCK:
        base = _ATTACHED.get(key)
        if base is None:
            base = _ATTACHED[key] = attach(target, read_only)
    cur = base.cursor()
    cur.execute(f"USE {CATALOG}")
    return cur


def forget(target: DuckLakeTarget, read_only: bool = False) -> None:
    """Drop this process's connection to a store (after an error, the next window attaches afresh)."""
    with _ATTACHED_LOCK:
        base = _ATTACHED.pop((target, read_only), None)
    if base is not None:
        base.close()


@contextmanager
def write_lock(target: DuckLakeTarget, timeout_s: float, busy: type[Exception]) -> Iterator[None]:
    """Hold the store's write lock (a PostgreSQL session advisory lock) for the block.

    Args:
        target: the store.
        timeout_s: how long to wait for another worker's window to end.
        busy: the exception to raise on timeout (the store's ``DatabaseBusy``).

    Raises:
        busy: another writer held the lock for longer than ``timeout_s``.
        DuckLakeError: the catalog database cannot be reached.
    """
    import psycopg  # only DuckLake needs it

    name = f"monitor pid {os.getpid()} on {socket.gethostname()}"
    try:
        pg = psycopg.connect(target.catalog, autocommit=True, application_name=name[:63])
    except psycopg.Error as exc:
        raise DuckLakeError(f"cannot reach the catalog database of {target}: {exc}") from exc
    try:
        # PostgreSQL queues lock waiters in order, so no worker starves; a waiter whose process
        # dies is noticed within a second and leaves the queue.
        pg.execute(f"SET lock_timeout = {max(1, int(timeout_s * 1000))}")  # an int we computed
        pg.execute("SET client_connection_check_interval = 1000")
        try:
            pg.execute("SELECT pg_advisory_lock(%s)", [target.lock_key])
        except psycopg.errors.LockNotAvailable:
            raise busy(
                f"{target}: the write lock is held by {_holder(pg, target.lock_key)} "
                f"(waited {timeout_s:g} s); raise MONITOR_DB_LOCK_TIMEOUT_S if its writes are long"
            ) from None
        yield
    finally:
        pg.close()  # closing the session releases its advisory lock


def _holder(pg: Any, key: int) -> str:
    # A bigint advisory key is split into classid (high 32 bits) and objid (low 32 bits).
    row = pg.execute(
        "SELECT a.application_name, a.client_addr::text, a.pid FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s LIMIT 1",
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
    ).fetchone()
    return (
        f"{row[0] or 'a session'} (backend {row[2]}, from {row[1] or 'a local socket'})"
        if row
        else "another writer"
    )


Column = tuple[str, str, bool, str | None]  # name, type, not null, default


@functools.cache
def _reference() -> tuple[dict[str, list[Column]], tuple[str, ...]]:
    """The schema the migrations build, read from a scratch in-memory database once per process."""
    from monitor.store.db import migrate

    scratch = duckdb.connect(":memory:")
    try:
        migrate(scratch)
        return _columns(scratch), tuple(_view_ddl(scratch))
    finally:
        scratch.close()


def schema_statements() -> tuple[str, ...]:
    """The DuckLake DDL of the monitor's schema: the DuckDB file's tables and views, from its migrations.

    Returns:
        ``CREATE TABLE IF NOT EXISTS`` statements (columns, ``NOT NULL`` and defaults; no keys,
        fixed-size arrays as lists), then ``CREATE OR REPLACE VIEW`` statements in creation order.
    """
    tables, views = _reference()
    creates = tuple(
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(_column_ddl(*column) for column in columns)})"
        for table, columns in tables.items()
    )
    return creates + views


def table_columns() -> dict[str, list[Column]]:
    """Each table's ``(column, type, not null, default)``, as DuckLake stores them."""
    return _reference()[0]


def _column_ddl(name: str, kind: str, not_null: bool, default: str | None) -> str:
    return f"{name} {kind}" + (" NOT NULL" if not_null else "") + (f" DEFAULT {default}" if default else "")


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[Column]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type, NOT is_nullable, column_default FROM duckdb_columns() "
        "WHERE NOT internal AND database_name = current_database() "
        "AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()) "
        "ORDER BY table_name, column_index"
    ).fetchall()
    tables: dict[str, list[Column]] = {}
    for table, column, kind, not_null, default in rows:
        # DuckLake reports a column without a default as the expression NULL.
        default = None if default in (None, "NULL") else default
        tables.setdefault(table, []).append((column, _FIXED_ARRAY.sub("[]", kind), bool(not_null), default))
    return tables


def _view_ddl(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    rows = con.execute(
        "SELECT sql FROM duckdb_views() WHERE NOT internal AND database_name = current_database() ORDER BY view_oid"
    ).fetchall()
    for (sql,) in rows:
        yield re.sub(r"^CREATE VIEW", "CREATE OR REPLACE VIEW", sql.strip(), count=1)


def migrate(con: duckdb.DuckDBPyConnection, versions: dict[int, str]) -> list[int]:
    """Bring a DuckLake store to the schema of the migrations, recording them in ``schema_migrations``.

    Tables are created if missing and given any missing columns; views are replaced. Data
    steps in the migrations concern DuckDB files that predate a table, never a new DuckLake store.
    Call it under the write lock, so that two workers starting together do not both create.

    Args:
        con: a read-write DuckLake connection.
        versions: every migration's version and file name.

    Returns:
        Versions recorded by this call.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    pending = sorted(set(versions) - done)
    if not pending:
        return []
    con.execute("BEGIN")
    try:
        for statement in schema_statements():
            con.execute(statement)
        stored = {
            (t, c)
            for t, c in con.execute(
                "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
            ).fetchall()
        }
        for table, columns in table_columns().items():
            for name, kind, _, default in columns:
                if (table, name) not in stored:
                    # Rows already stored have no value for it, so the new column cannot be NOT NULL.
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {_column_ddl(name, kind, False, default)}")
        con.executemany(
            "INSERT INTO schema_migrations VALUES (?, ?, now())", [[v, versions[v]] for v in pending]
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return pending


def index_fulltext(con: duckdb.DuckDBPyConnection) -> None:
    """Build a BM25 index of the lake's articles in this session's memory, for ``fts_main_articles`` queries.

    The DuckDB file's read copy carries an index rebuilt after every run; a lake has no read
    copy, so a session that asks for full-text search indexes the articles it can see (about a
    second per few thousand articles). Unqualified names still resolve to the lake first.

    Raises:
        DuckLakeError: the fts extension's package is not installed.
    """
    try:
        extensions.require(con, "fts")
    except extensions.ExtensionMissing as exc:
        raise DuckLakeError(str(exc)) from exc
    con.execute(
        f"CREATE OR REPLACE TABLE memory.main.articles AS SELECT article_id, title, text FROM {CATALOG}.articles"
    )
    con.execute("PRAGMA create_fts_index('memory.main.articles', 'article_id', 'title', 'text', overwrite=1)")
    con.execute(f"SET search_path = '{CATALOG}.main,memory.fts_main_articles,memory.main'")
