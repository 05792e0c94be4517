"""DuckDB extensions from their PyPI packages: loaded from files we ship, never downloaded."""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

# Extension name → the PyPI package (``duckdb-extension-<x>``) that ships its binary.
PACKAGES = {
    "fts": "duckdb_extension_fts",
    "ducklake": "duckdb_extension_ducklake",
    "postgres": "duckdb_extension_postgres",
    "httpfs": "duckdb_extension_httpfs",
}


class ExtensionMissing(RuntimeError):
    """Raised when a needed DuckDB extension's package is not installed."""


def extension_file(name: str) -> Path | None:
    """The ``.duckdb_extension`` file of an extension in its package, or None if the package is absent."""
    try:
        package = importlib.import_module(PACKAGES[name])
    except ImportError:
        return None
    root = Path(package.__file__ or "").parent / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/{name}.duckdb_extension"))
    return found[0] if found else None


def load(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Install an extension from its package file and load it. Returns whether it loaded."""
    path = extension_file(name)
    if path is None:
        return False
    # INSTALL from a file copies it into DuckDB's extension directory, where a later LOAD (or the
    # duckdb CLI's autoloading) finds it offline.
    con.execute(f"INSTALL '{path.as_posix()}'")  # a path from our own package, not user input
    con.execute(f"LOAD {name}")
    return True


def require(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load an extension or fail with the package to install.

    Raises:
        ExtensionMissing: its package is not installed (or has no build for this DuckDB).
    """
    if not load(con, name):
        package = PACKAGES[name].replace("_", "-")
        raise ExtensionMissing(
            f"the DuckDB extension {name} is not installed: pip install {package}=={duckdb.__version__}"
        )
