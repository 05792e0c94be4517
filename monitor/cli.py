"""The ``monitor`` command. The only place that turns library exceptions into messages."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from monitor import __version__, cli_extract, cli_feeds, cli_topics

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEMO_DB = Path("data/demo.duckdb")
DEMO_PORT = 8765

FLAGGED_SQL = """
SELECT m.topic_id AS topic, round(m.score, 3) AS score, a.title, coalesce(a.site_name, '') AS outlet
FROM matches m JOIN articles a USING (article_id)
ORDER BY m.topic_id, m.score DESC
"""


def _defaults() -> Any:
    from monitor.config import Settings

    return Settings()


def _prepare_prefect_env() -> None:
    # Prefect reads these at import; set them before the flow module is imported.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``monitor`` command."""
    settings = _defaults()
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch news feeds for coverage of your topics: poll, extract, embed, store, flag, alert.",
        epilog="Every setting also reads a MONITOR_* environment variable (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one ingest cycle over the feeds in the feed list")
    _pipeline_options(run, settings, db_default=settings.db)
    run.add_argument(
        "--feeds", type=Path, default=settings.feeds, help="feed list YAML (default: %(default)s)"
    )
    run.add_argument(
        "--all", action="store_true", dest="poll_all",
        help="poll every feed now, not only those whose adaptive schedule says they are due",
    )  # fmt: skip

    demo = sub.add_parser(
        "demo", help="run the pipeline against a bundled sample news site served on 127.0.0.1"
    )
    _pipeline_options(demo, settings, db_default=DEMO_DB)
    demo.add_argument(
        "--port", type=int, default=DEMO_PORT, help="port for the sample site (default: %(default)s)"
    )

    sql = sub.add_parser(
        "sql", help="run SQL from a file or stdin on a read-only connection and print the result"
    )
    sql.add_argument("source", metavar="FILE|-", help="SQL file, or - for standard input")
    sql.add_argument("--db", type=Path, default=settings.db, help="DuckDB file (default: %(default)s)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sql.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="set a query variable, read in SQL with getvariable('NAME'); repeatable",
    )  # fmt: skip
    sql.add_argument("--max-width", type=int, default=60, help="truncate table cells to this width")
    cli_topics.add_commands(sub, settings)
    cli_feeds.add_commands(sub)
    cli_extract.add_commands(sub)
    return parser


def _pipeline_options(p: argparse.ArgumentParser, settings: Any, db_default: Path) -> None:
    p.add_argument("--db", type=Path, default=db_default, help="DuckDB file (default: %(default)s)")
    p.add_argument(
        "--topics", type=Path, default=settings.topics, help="topic profiles YAML (default: %(default)s)"
    )
    p.add_argument(
        "--alerts-file", type=Path, default=None,
        help="JSON-lines alert sink (default: <db name>.alerts.jsonl beside the database)",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monitor`` command.

    Returns:
        The process exit code.
    """
    args = build_parser().parse_args(argv)
    handlers = {
        "run": cmd_run,
        "demo": cmd_demo,
        "sql": cmd_sql,
        "evaluate": cli_topics.cmd_evaluate,
        "calibrate": cli_topics.cmd_calibrate,
        "explain": cli_topics.cmd_explain,
        "rescore": cli_topics.cmd_rescore,
        "feeds": cli_feeds.cmd_feeds,
        "extract": cli_extract.cmd_extract,
    }
    try:
        return handlers[args.command](args)
    except BrokenPipeError:
        # Output piped into `head` and cut short: not an error worth a traceback.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream for interpreter exit
        return EXIT_OK
    except KeyboardInterrupt:
        print("monitor: interrupted", file=sys.stderr)
        return 130


def _alerts_file(args: argparse.Namespace) -> Path:
    from monitor.config import Settings

    return Settings(db=args.db, alerts_file=args.alerts_file).alerts_path


def _run_flow(args: argparse.Namespace, feeds: Path, allow: list[str] | None, poll_all: bool) -> int:
    _prepare_prefect_env()
    from monitor.sources import FeedListError, load_feeds
    from monitor.topics import TopicConfigError, load_topics

    try:  # validate before paying for Prefect's start-up
        feed_count = len(load_feeds(feeds))
        load_topics(args.topics)
    except (FeedListError, TopicConfigError) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE

    import importlib

    # The flow lives outside the library (monitor never imports Prefect itself).
    ingest_module = importlib.import_module("flows.ingest")
    print(f"monitor: polling {feed_count} feeds from {feeds}; database {args.db}", file=sys.stderr)
    started = time.monotonic()
    state = ingest_module.ingest(
        db=str(args.db),
        feeds=str(feeds),
        topics=str(args.topics),
        alerts_file=str(_alerts_file(args)),
        fetch_allow=allow,
        poll_all=poll_all,
        return_state=True,
    )
    elapsed = time.monotonic() - started
    if state.is_failed():
        try:
            state.result()
        except Exception as exc:  # noqa: BLE001 - report whatever ended the flow, then exit non-zero
            print(f"monitor: run failed after {elapsed:.1f} s: {exc}", file=sys.stderr)
        return EXIT_FAILED
    summary = state.result()
    _print_summary(summary, elapsed)
    return EXIT_OK


def _print_summary(summary: Any, elapsed: float) -> None:
    c = summary.counts
    print(
        f"run {summary.run_id}: {c.get('feeds_total', 0)} feeds ({c.get('feeds_ok', 0)} ok, "
        f"{c.get('feeds_not_modified', 0)} not modified, {c.get('feeds_failed', 0)} failed), "
        f"{c.get('entries_new', 0)} new entries, {c.get('articles_stored', 0)} articles, "
        f"{c.get('matches_new', 0)} new matches, {c.get('alerts_delivered', 0)} alerts in {elapsed:.1f} s"
    )
    for name, error in summary.failed_feeds:
        print(f"  failed feed: {name}: {error}")


def cmd_run(args: argparse.Namespace) -> int:
    """``monitor run``: one ingest cycle over the user's feed list."""
    return _run_flow(args, args.feeds, allow=None, poll_all=args.poll_all)


def cmd_demo(args: argparse.Namespace) -> int:
    """``monitor demo``: serve the sample site, ingest it, print what was flagged."""
    from monitor import demo, store

    try:
        with demo.serve_sample_site(port=args.port) as base:
            feeds = demo.write_feed_list(base, args.db.with_name("demo-feeds.yaml"))
            print(f"monitor: sample news site at {base}", file=sys.stderr)
            code = _run_flow(args, feeds, allow=["127.0.0.1"], poll_all=True)
    except OSError as exc:
        print(
            f"monitor: cannot serve the sample site on port {args.port}: {exc} (try --port)", file=sys.stderr
        )
        return EXIT_FAILED
    if code != EXIT_OK:
        return code
    with store.connect(args.db, read_only=True) as con:
        con.execute(FLAGGED_SQL)
        columns = [d[0] for d in con.description]
        rows = con.fetchall()
        (articles,) = con.execute("SELECT count(*) FROM articles").fetchone() or (0,)
    print(f"\nFlagged coverage ({len(rows)} matches among {articles} articles in {args.db}):")
    print_table(columns, rows, sys.stdout, max_width=70)
    print(f"\nAlerts: {_alerts_file(args)}   Explore: monitor sql --db {args.db} queries/new_matches_24h.sql")
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    """``monitor sql``: run SQL read-only and print the last statement's result."""
    import duckdb

    from monitor import store

    try:
        sql = sys.stdin.read() if args.source == "-" else Path(args.source).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"monitor: cannot read {args.source}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    params: list[tuple[str, str]] = []
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            print(f"monitor: --param expects NAME=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
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
    except (store.DatabaseMissing, store.DatabaseBusy, store.DatabaseOutdated) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except duckdb.Error as exc:
        print(f"monitor: SQL error: {exc}", file=sys.stderr)
        return EXIT_FAILED
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


if __name__ == "__main__":
    sys.exit(main())
