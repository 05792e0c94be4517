"""The writer lease: one monitor process at a time writes a store.

DuckDB's own file lock only lasts as long as a connection, and the pipeline keeps its
connections short so that analysts can read between write windows. The lease spans a
whole writing command (an ingest run, a rescore, a re-embed) instead: a second writer
waits for it, up to a timeout, and then gives up with a message naming the holder.

It is an exclusive ``flock`` on a small file beside the database. The kernel releases it
when the holding process ends, however it ends, so a killed run never leaves a stale
lease behind, and a run recorded as ``running`` whose lease is free is known to be dead.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.store.ducklake import DuckLakeTarget


class WriterBusy(RuntimeError):
    """Raised when another process still holds the writer lease after the timeout."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: written into the lease file for the next writer's message."""

    pid: int
    host: str
    purpose: str
    since: str

    def describe(self) -> str:
        """A phrase such as ``pid 4242 on host-a (monitor run) since 2026-12-01T10:00:00+00:00``."""
        return f"pid {self.pid} on {self.host} ({self.purpose}) since {self.since}"


@dataclass(frozen=True)
class WriterLease:
    """A held lease (the proof a writing function can ask for)."""

    path: Path
    holder: Holder
    # False for a DuckLake store, where many workers write at once: each write window holds the
    # store's write lock instead (monitor.store.ducklake), and other writers may be alive.
    exclusive: bool = True


# Leases this process holds, by lease file: a writing command that calls another writing
# function (the CLI running the ingest flow) re-enters its own lease instead of waiting on it.
_HELD: dict[Path, tuple[WriterLease, int]] = {}
_HELD_LOCK = threading.Lock()


def lease_path(db: Path | str) -> Path:
    """The lease file of a database file: ``<db>.writer`` beside it."""
    db = Path(db)
    return db.with_name(db.name + ".writer")


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lease file, or None if it is empty or unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(int(raw["pid"]), str(raw["host"]), str(raw["purpose"]), str(raw["since"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


@contextmanager
def writer_lease(
    db: Path | str | DuckLakeTarget,
    purpose: str,
    timeout_s: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[WriterLease]:
    """Hold the writer lease of a database for the duration of the block.

    Args:
        db: the database file (``:memory:`` needs no lease and gets a dummy one), or a DuckLake
            store, which gets a non-exclusive one: its workers write side by side.
        purpose: what the writer does, shown to a writer that has to wait (``monitor run``).
        timeout_s: how long to wait for the current holder to finish.
        on_wait: told once, in a sentence, when the lease is held and this writer starts waiting.

    Yields:
        The lease.

    Raises:
        WriterBusy: another process held the lease for longer than ``timeout_s``.
    """
    me = Holder(os.getpid(), socket.gethostname(), purpose, datetime.now(UTC).isoformat(timespec="seconds"))
    if str(db) == ":memory:":
        yield WriterLease(Path(":memory:"), me)
        return
    if isinstance(db, DuckLakeTarget):
        yield WriterLease(Path(db.data), me, exclusive=False)
        return
    path = lease_path(db).resolve()
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is not None:
            _HELD[path] = (held[0], held[1] + 1)
    if held is not None:
        try:
            yield held[0]
        finally:
            with _HELD_LOCK:
                lease, depth = _HELD[path]
                _HELD[path] = (lease, depth - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, Path(db), timeout_s, on_wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me.__dict__).encode("utf-8"), 0)
        lease = WriterLease(path, me)
        with _HELD_LOCK:
            _HELD[path] = (lease, 1)
        try:
            yield lease
        finally:
            with _HELD_LOCK:
                del _HELD[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, db: Path, timeout_s: float, on_wait: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if on_wait is not None and not told:
            holder = read_holder(path)
            on_wait(
                f"waiting up to {timeout_s:g} s for {holder.describe() if holder else 'another writer'} "
                f"to finish writing {db}"
            )
            told = True
        if time.monotonic() >= deadline:
            holder = read_holder(path)
            who = holder.describe() if holder else "another process"
            raise WriterBusy(
                f"{db} is being written by {who}; waited {timeout_s:g} s for it to finish "
                "(MONITOR_DB_LOCK_TIMEOUT_S sets the wait)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def lease_is_free(db: Path | str) -> bool:
    """Tell whether no process holds the writer lease of a database right now."""
    path = lease_path(db)
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)
