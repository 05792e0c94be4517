"""The ``monitor`` command. The only place that turns library exceptions into messages and exit codes.

One module per command group: ``ingest`` (run, demo), ``sql``, ``topics`` (evaluate,
calibrate, explain, rescore, reembed), ``alerts`` (deliver, digest, log), ``feeds`` and ``extract``; ``flow_runner`` is the
one place that runs a Prefect flow.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from monitor import __version__
from monitor.cli import alerts, extract, feeds, ingest, review, serve, sql, topics, ui
from monitor.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, print_table
from monitor.config import Settings

__all__ = ["build_parser", "main", "print_table"]

COMMAND_GROUPS = (ingest, serve, sql, topics, alerts, review, feeds, extract, ui)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``monitor`` command."""
    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch news feeds for coverage of your topics: poll, extract, embed, store, flag, alert.",
        epilog="Every setting also reads a MONITOR_* environment variable (see README). "
        "`monitor COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub, settings)
    return parser


def _expected_errors() -> dict[type[BaseException], int]:
    """Library exceptions a user can cause, with the exit code each one gets."""
    from monitor import store
    from monitor.evaluation.labels import LabelsError
    from monitor.ingest.feedlist import FeedListError
    from monitor.matching.embedding import EncoderUnavailable
    from monitor.matching.rescore import EncoderMismatch
    from monitor.matching.topics import TopicConfigError
    from monitor.store.ducklake import DuckLakeError

    return {
        FeedListError: EXIT_USAGE,
        TopicConfigError: EXIT_USAGE,
        LabelsError: EXIT_USAGE,
        EncoderUnavailable: EXIT_FAILED,
        EncoderMismatch: EXIT_FAILED,
        store.DatabaseMissing: EXIT_FAILED,
        store.DatabaseBusy: EXIT_FAILED,
        store.DatabaseOutdated: EXIT_FAILED,
        store.WriterBusy: EXIT_FAILED,
        DuckLakeError: EXIT_FAILED,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monitor`` command.

    Returns:
        The process exit code.
    """
    try:
        args = build_parser().parse_args(argv)
    except ValidationError as exc:
        return _invalid_settings(exc)
    handler: Callable[[argparse.Namespace], int] = args.handler
    expected = _expected_errors()
    try:
        return handler(args)
    except tuple(expected) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return next(code for kind, code in expected.items() if isinstance(exc, kind))
    except ValidationError as exc:
        return _invalid_settings(exc)
    except BrokenPipeError:
        # Output piped into `head` and cut short: not an error worth a traceback.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream for interpreter exit
        return EXIT_OK
    except KeyboardInterrupt:
        print("monitor: interrupted", file=sys.stderr)
        return 130


def _invalid_settings(exc: ValidationError) -> int:
    """Name each bad setting (``MONITOR_<NAME>`` or its option) in one line, not a traceback."""
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        if not name:  # a rule across settings, such as store=ducklake without its catalog
            print(f"monitor: invalid settings: {error['msg'].removeprefix('Value error, ')}", file=sys.stderr)
            continue
        print(f"monitor: invalid setting {name} (MONITOR_{name.upper()}): {error['msg']}", file=sys.stderr)
    return EXIT_USAGE
