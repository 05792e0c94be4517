"""``monitor alerts deliver|digest|log``: the delivery ledger from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_FAILED, EXIT_OK, add_db, add_topics, print_table, settings_from
from monitor.config import Settings


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``monitor alerts ...``."""
    alerts = sub.add_parser(
        "alerts",
        help="deliver pending alerts, send digests, show the delivery log",
        description="Alerts go to the JSON-lines file (and console) and to every channel in MONITOR_ALERT_URLS "
        "or a topic's `alerts:` list in topics.yaml. Each (alert, channel) is a ledger row: claimed before "
        "sending, recorded after, retried with back-off, never sent twice on one channel.",
    )
    group = alerts.add_subparsers(dest="alerts_command", required=True, metavar="SUBCOMMAND")
    for name, helptext in (
        (
            "deliver",
            "send every alert that is due now, on every channel (what the ingest flow does at its end)",
        ),
        ("digest", "send each topic's pending digest on each channel: stories ranked by score, each once"),
    ):
        p = group.add_parser(name, help=helptext, description=helptext)
        add_db(p, settings.db)
        add_topics(p, settings.topics)
        p.add_argument(
            "--alerts-file", type=Path, default=None, help="JSON-lines sink (default: beside the database)"
        )
        p.add_argument("--topic", help="only this topic's alerts")
        p.add_argument("--quiet", action="store_true", help="no console line per alert")
        p.set_defaults(handler=cmd_deliver, digests=name == "digest")
    log = group.add_parser("log", help="recent deliveries per channel, newest first")
    add_db(log, settings.db)
    log.add_argument("--channel", help="only channels whose masked URL contains this (or this channel id)")
    log.add_argument("--limit", type=int, default=30)
    log.add_argument("--format", choices=("table", "json"), default="table")
    log.set_defaults(handler=cmd_log)


def cmd_deliver(args: argparse.Namespace) -> int:
    """Run one delivery round and print what happened per channel."""
    from monitor.alerts.service import deliver_due
    from monitor.matching.topics import load_topics

    settings = settings_from(args)
    topics = load_topics(settings.topics)
    echo = None if args.quiet else print
    report = deliver_due(settings, topics, digests=args.digests, topic_id=args.topic, echo=echo)
    what = "digests" if args.digests else "alerts"
    print(
        f"monitor: {report.sent} {what} sent"
        + (f" ({report.digests} digest messages)" if report.digests else "")
        + (f", {report.folded} over budget folded into the next digest" if report.folded else "")
        + (f", {report.released} resent after an interrupted delivery" if report.released else "")
        + (f", {report.gave_up} given up" if report.gave_up else ""),
        file=sys.stderr,
    )
    failing = 0
    for outcome in sorted(report.channels.values(), key=lambda c: c.name):
        line = f"  {outcome.name}: {outcome.sent} sent"
        if outcome.error:
            failing += 1
            line += f"; failing: {outcome.error} ({outcome.failed + outcome.waiting} waiting, retried with back-off)"
        print(line, file=sys.stderr)
    return EXIT_FAILED if failing and not report.sent else EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    """Print recent ledger rows."""
    from monitor import store
    from monitor.store.deliveries import delivery_log

    with store.connect(settings_from(args).store_target, read_only=True) as con:
        columns, rows = delivery_log(con, args.limit, args.channel)
    if args.format == "json":
        json.dump(
            [dict(zip(columns, r, strict=True)) for r in rows], sys.stdout, default=str, ensure_ascii=False
        )
        sys.stdout.write("\n")
    else:
        print_table(columns, rows, sys.stdout, max_width=50)
    return EXIT_OK
