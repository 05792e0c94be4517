"""``monitor serve``: every deployment on its schedule, in one process, on the embedded defaults."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_OK, EXIT_USAGE, add_db, add_topics, fail, settings_from
from monitor.config import Settings


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``serve``."""
    sv = sub.add_parser(
        "serve",
        help="run every deployment on its schedule in this process (ingest, deliver, digest, maintenance)",
        description="Serves the deployments of flows/deployments.py (the same as prefect.yaml): ingest every "
        "15 min, deliver every minute, digest daily at 07:00 UTC, maintenance daily at 03:30 UTC, rescore by hand. "
        "Uses PREFECT_API_URL when set, else starts a Prefect server on 127.0.0.1. Ctrl-C stops cleanly.",
    )
    add_db(sv, settings.db)
    add_topics(sv, settings.topics)
    sv.add_argument(
        "--feeds", type=Path, default=settings.feeds, help="feed list YAML (default: %(default)s)"
    )
    sv.add_argument("--alerts-file", type=Path, default=None)
    sv.add_argument("--ingest-every", type=int, metavar="SECONDS", help="ingest interval (default 900)")
    sv.add_argument("--deliver-every", type=int, metavar="SECONDS", help="delivery interval (default 60)")
    sv.add_argument(
        "--demo", action="store_true",
        help="serve the bundled sample site on 127.0.0.1 and ingest it instead of feeds.yaml",
    )  # fmt: skip
    sv.add_argument(
        "--prefect-home",
        type=Path,
        help="where the local Prefect server keeps its state (default: beside the database)",
    )
    sv.set_defaults(handler=cmd_serve)


def _say(line: str) -> None:
    print(f"monitor: {line}", file=sys.stderr, flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from contextlib import ExitStack

    from monitor.cli.flow_runner import serve_all

    settings = settings_from(args)
    intervals = {k: v for k, v in (("ingest", args.ingest_every), ("deliver", args.deliver_every)) if v}
    home = args.prefect_home or settings.db.parent / "prefect"
    with ExitStack() as stack:
        feeds, allow = settings.feeds, None
        if args.demo:
            from monitor import demo

            base = stack.enter_context(demo.serve_sample_site(port=0))
            feeds = demo.write_feed_list(base, settings.db.with_name("demo-feeds.yaml"))
            allow = ["127.0.0.1"]
            _say(f"sample news site at {base}")
        for path, what in ((settings.topics, "topics file"), (feeds, "feed list")):
            if not path.exists():
                return fail(f"{what} not found: {path}", EXIT_USAGE)
        # Runs start in their own working directory: every path they get is absolute.
        parameters = {
            "db": str(settings.db.resolve()),
            "feeds": str(feeds.resolve()),
            "topics": str(settings.topics.resolve()),
            "alerts_file": str(settings.alerts_path.resolve()),
            "fetch_allow": allow,
        }
        serve_all(parameters, intervals, home, _say)
    _say("stopped")
    return EXIT_OK
