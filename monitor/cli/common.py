"""What every ``monitor`` command shares: exit codes, settings from arguments, progress, tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from monitor.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEMO_DB = Path("data/demo.duckdb")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """The settings object with the command line's choices laid over the MONITOR_* environment."""
    overrides: dict[str, Any] = {}
    for name in ("db", "feeds", "topics", "alerts_file"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return Settings(**overrides)


def progress(line: str) -> None:
    """Print a progress line on stderr (stdout is kept for results)."""
    print(line, file=sys.stderr, flush=True)


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print ``monitor: message`` on stderr and return the exit code."""
    print(f"monitor: {message}", file=sys.stderr)
    return code


def add_db(parser: argparse.ArgumentParser, default: Path) -> None:
    """The ``--db`` option."""
    parser.add_argument("--db", type=Path, default=default, help="DuckDB file (default: %(default)s)")


def add_topics(parser: argparse.ArgumentParser, default: Path) -> None:
    """The ``--topics`` option."""
    parser.add_argument(
        "--topics", type=Path, default=default, help="topic profiles YAML (default: %(default)s)"
    )


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO, max_width: int = 60
) -> None:
    """Print rows as an aligned plain-text table.

    Args:
        columns: column names.
        rows: the rows.
        out: the stream to write to.
        max_width: longer cells are cut with an ellipsis.
    """

    def cell(value: Any) -> str:
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%d %H:%M")
        text = "" if value is None else " ".join(str(value).split())
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out.write(line.rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
