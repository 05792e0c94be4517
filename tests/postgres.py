"""A throw-away PostgreSQL server for the DuckLake tests: a cluster in a temp dir on a free 127.0.0.1 port.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it). initdb refuses
to run as root, so as root the cluster belongs to the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SEARCH = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


class PostgresUnavailable(RuntimeError):
    """Raised when no PostgreSQL binaries are installed."""


@dataclass(frozen=True)
class Postgres:
    """A running server: its port and a superuser's libpq connection string template."""

    port: int
    user: str
    socket_dir: str

    def dsn(self, dbname: str) -> str:
        """A libpq connection string to a database on this server (TCP on 127.0.0.1)."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={self.user}"

    def create_database(self, name: str) -> str:
        """Create a database and return its connection string."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')  # a test's own identifier
        return self.dsn(name)


def _bin_dir() -> Path:
    for candidate in _SEARCH:
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a PostgreSQL cluster for the block, then stop it and delete it.

    Raises:
        PostgresUnavailable: no binaries are installed.
    """
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    run_as: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        user = "postgres"
        shutil.chown(root, user)
        shutil.chown(sockets, user)
        run_as = ["runuser", "-u", user, "--"]
    port = _free_port()
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        server = Postgres(port, user, str(sockets))
        _wait(server)
        yield server
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _wait(server: Postgres, timeout_s: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(server.dsn("postgres")).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
