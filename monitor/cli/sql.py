"""``monitor sql``: analysts' SQL on a read-only connection."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_db, fail, print_table
from monitor.config import Settings


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``sql``."""
    sql = sub.add_parser(
        "sql", help="run SQL from a file or stdin on a read-only connection and print the result"
    )
    sql.add_argument("source", metavar="FILE|-", help="SQL file, or - for standard input")
    add_db(sql, settings.db)
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sql.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="set a query variable, read in SQL with getvariable('NAME'); repeatable",
    )  # fmt: skip
    sql.add_argument("--max-width", type=int, default=60, help="truncate table cells to this width")
    sql.set_defaults(handler=cmd_sql)


def cmd_sql(args: argparse.Namespace) -> int:
    """Run SQL read-only and print the last statement's result."""
    import duckdb

    from monitor import store

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
    try:
        with store.connect(args.db, read_only=True) as con:
            for name, value in params:
                # SET VARIABLE takes an identifier, not a parameter; the name was checked above.
                con.execute(f"SET VARIABLE {name} = ?", [value])
            con.execute(sql)
            if con.description is None:
                return EXIT_OK
            columns = [d[0] for d in con.description]
            rows = con.fetchall()
    except duckdb.Error as exc:
        return fail(f"SQL error: {exc}", EXIT_FAILED)
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
    return EXIT_OK
