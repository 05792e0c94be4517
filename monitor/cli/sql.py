"""``monitor sql``: analysts' SQL, on the read copy by default, so it never waits for (or blocks) the writer.

``--param NAME=VALUE`` sets DuckDB variables read with ``getvariable('NAME')``. ``--param
text=...`` is also embedded with the configured encoder (query role) and exposed as
``text_vector`` (a ``FLOAT[]``) and ``text_model`` (the encoder's name), for semantic and hybrid
search. ``--list`` shows the curated queries with what they answer.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

from monitor.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_db,
    fail,
    print_table,
    progress,
    settings_from,
)
from monitor.config import Settings

# The curated queries: ./queries when run from a checkout's root, else the checkout this code is in.
QUERIES = Path("queries") if Path("queries").is_dir() else Path(__file__).resolve().parents[2] / "queries"


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``sql``."""
    sql = sub.add_parser(
        "sql",
        help="run SQL (a file, or - for stdin) read-only on the analysts' read copy; --list shows the curated queries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sql.add_argument("source", nargs="?", metavar="FILE|-", help="SQL file, or - for standard input")
    add_db(sql, settings.db)
    sql.add_argument(
        "--live", action="store_true",
        help="query the live database instead of the read copy (waits for the writer's short write windows)",
    )  # fmt: skip
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sql.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="set a query variable, read in SQL with getvariable('NAME'); repeatable",
    )  # fmt: skip
    sql.add_argument("--max-width", type=int, default=60, help="truncate table cells to this width")
    sql.add_argument(
        "--list", action="store_true", help="list the curated queries in queries/ with their headers"
    )
    sql.set_defaults(handler=cmd_sql)


def header(path: Path) -> dict[str, str]:
    """The ``-- Key: text`` fields of a query file's leading comment (Answers, Parameters, Columns)."""
    fields: dict[str, str] = {}
    key = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].strip()
        found = re.match(r"([A-Z][a-z]+):\s*(.*)", body)
        if found:
            key = found.group(1)
            fields[key] = found.group(2)
        elif key:
            fields[key] += " " + body
    return fields


def header_columns(path: Path) -> list[str]:
    """The column names a query's header promises, in order."""
    text = header(path).get("Columns", "")
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    return [part.split()[0] for part in text.split(",") if part.strip()]


def list_queries(out: Any) -> int:
    """Print every curated query with what it answers and its parameters."""
    for path in sorted(QUERIES.glob("*.sql")):
        fields = header(path)
        out.write(f"queries/{path.name}\n  {fields.get('Answers', '(no header)')}\n")
        out.write(
            f"  Parameters: {fields.get('Parameters', 'none.')}\n  Columns: {', '.join(header_columns(path))}\n\n"
        )
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    """Run SQL read-only and print the last statement's result."""
    import duckdb

    from monitor import store
    from monitor.store import ducklake
    from monitor.store.readcopy import load_fts, read_copy_path

    if args.list:
        return list_queries(sys.stdout)
    if args.source is None:
        return fail("give a SQL file, or - for standard input (or --list)", EXIT_USAGE)
    try:
        sql = sys.stdin.read() if args.source == "-" else Path(args.source).read_text(encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot read {args.source}: {exc}", EXIT_USAGE)
    params: list[tuple[str, str]] = []
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            return fail(f"--param expects NAME=VALUE, got {item!r}", EXIT_USAGE)
        params.append((name, value))
    settings = settings_from(args)
    target = settings.store_target  # a DuckLake store's readers never block: no read copy
    if not args.live and settings.store == "duckdb":
        copy = read_copy_path(args.db)
        if copy.exists():
            target = copy
        elif args.db.exists():
            progress(
                f"monitor: no read copy yet ({copy}); reading the live file (the next run writes the copy)"
            )
    vector = _text_vector(settings, dict(params))
    try:
        with store.connect(target, read_only=True, lock_timeout_s=settings.db_lock_timeout_s) as con:
            if "fts_main_articles" in sql and settings.store == "ducklake":
                ducklake.index_fulltext(con)
            elif "fts_main_articles" in sql:
                load_fts(con)
            for name, value in params:
                # SET VARIABLE takes an identifier, not a parameter; the name was checked above, and quoting it
                # lets keywords such as limit be names.
                con.execute(f'SET VARIABLE "{name}" = ?', [value])
            if vector is not None:
                con.execute("SET VARIABLE text_vector = ?::FLOAT[]", [vector[0]])
                con.execute("SET VARIABLE text_model = ?", [vector[1]])
            con.execute(sql)
            if con.description is None:
                return EXIT_OK
            columns = [d[0] for d in con.description]
            rows = con.fetchall()
    except duckdb.Error as exc:
        return fail(f"SQL error: {exc}", EXIT_FAILED)
    _write(columns, rows, args)
    return EXIT_OK


def _text_vector(settings: Settings, params: dict[str, str]) -> tuple[list[float], str] | None:
    """The configured encoder's query vector of ``--param text=...``, with the encoder's name."""
    if not params.get("text"):
        return None
    from monitor.matching.embedding import load_encoder

    encoder = load_encoder(settings.embedder, settings.model_path, settings.embed_batch_size)
    return [float(x) for x in encoder.encode_queries([params["text"]])[0]], encoder.name


def _write(columns: list[str], rows: list[tuple], args: argparse.Namespace) -> None:
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif args.format == "json":
        json.dump(
            [dict(zip(columns, row, strict=True)) for row in rows],
            sys.stdout,
            default=str,
            ensure_ascii=False,
        )
        sys.stdout.write("\n")
    else:
        print_table(columns, rows, sys.stdout, max_width=args.max_width)
