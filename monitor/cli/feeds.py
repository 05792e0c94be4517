"""``monitor feeds check``: run saved feed files through the same parsing path as the flow."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from monitor.config import Settings
from monitor.ingest.parsing import parse_feed
from monitor.models import Feed, FetchResult, FetchStatus

MAX_FILE_BYTES = 10 * 1024 * 1024


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``monitor feeds ...`` on the ``monitor`` parser."""
    feeds = sub.add_parser("feeds", help="inspect feed files")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="SUBCOMMAND")
    check = feeds_sub.add_parser(
        "check",
        help="parse every file under a directory through the monitor's feed-ingest path",
        description="Parses each file with the code the flow runs after a download and prints one JSON "
        "object as the last line: files, ok, bozo (recovered from errors), failed (recorded as a parse "
        "error), crashed (an exception escaped: a bug).",
    )
    check.add_argument("directory", type=Path)
    check.add_argument("--verbose", "-v", action="store_true", help="print one line per file on stderr")
    check.set_defaults(handler=cmd_feeds)


def check_file(path: Path) -> tuple[str, str]:
    """Parse one saved feed file as if it had just been downloaded.

    Returns:
        ``(outcome, detail)`` where outcome is ok, bozo, failed or crashed.
    """
    body = path.read_bytes()[: MAX_FILE_BYTES + 1]
    if len(body) > MAX_FILE_BYTES:
        return "failed", "larger than the feed size cap"
    url = f"http://feeds.invalid/{path.name}"
    fetch = FetchResult(url, url, FetchStatus.OK, 200, None, body)
    try:
        poll = parse_feed(Feed(name=path.name, url=url), fetch)
    except Exception as exc:  # noqa: BLE001 - counting crashes is the point of this command
        return "crashed", f"{type(exc).__name__}: {exc}"
    if poll.parse_error:
        return "failed", poll.parse_error
    return ("bozo" if poll.bozo else "ok"), f"{len(poll.entries)} entries"


def cmd_feeds(args: argparse.Namespace) -> int:
    """Dispatch ``monitor feeds`` subcommands."""
    if not args.directory.is_dir():
        print(f"monitor: not a directory: {args.directory}", file=sys.stderr)
        return EXIT_USAGE
    counts = {"files": 0, "ok": 0, "bozo": 0, "failed": 0, "crashed": 0}
    crashes: list[str] = []
    for path in sorted(p for p in args.directory.rglob("*") if p.is_file()):
        outcome, detail = check_file(path)
        counts["files"] += 1
        counts[outcome] += 1
        if outcome == "crashed":
            crashes.append(f"{path}: {detail}")
        if args.verbose or outcome == "crashed":
            print(f"{outcome:8} {path}: {detail}", file=sys.stderr)
        if counts["files"] % 500 == 0:
            print(f"monitor: checked {counts['files']} files", file=sys.stderr)
    print(json.dumps(counts))
    return EXIT_FAILED if crashes else EXIT_OK
