"""``monitor review``: judge flagged coverage in a keystroke, or from scripts.

Interactive (a terminal): one match at a time, newest first, with its headline, outlet,
score, date and the passage that matched (keywords in bold); ``r`` relevant, ``n`` not
relevant, ``s`` skip, ``c`` add a note, ``q`` quit. Each verdict is written at once, under
the writer lease. Scripts: ``--list --format json`` and ``ID --relevant|--irrelevant``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TextIO

from monitor.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_db, fail, print_table, settings_from
from monitor.config import Settings
from monitor.models import QueueItem, ReviewDecision

BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"
KEYS = "[r] relevant  [n] not relevant  [s] skip  [c] add a note  [q] quit"


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``review``."""
    rv = sub.add_parser(
        "review",
        help="judge flagged matches: relevant or not (interactive, or --list / ID --relevant for scripts)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rv.add_argument(
        "article",
        nargs="?",
        metavar="ID",
        help="an article id (or prefix of 6+, or URL) to record a verdict for",
    )
    add_db(rv, settings.db)
    rv.add_argument(
        "--topic", help="only this topic's matches (needed for ID when it matched several topics)"
    )
    verdict = rv.add_mutually_exclusive_group()
    verdict.add_argument("--relevant", dest="verdict", action="store_const", const="relevant")
    verdict.add_argument(
        "--irrelevant", "--not-relevant", dest="verdict", action="store_const", const="not-relevant"
    )
    rv.add_argument("--note", help="a note to store with the verdict")
    rv.add_argument("--list", action="store_true", help="print the queue of pending matches and exit")
    rv.add_argument("--decisions", action="store_true", help="print recent verdicts and exit")
    rv.add_argument("--all", action="store_true", help="with --list: reviewed matches too")
    rv.add_argument("--limit", type=int, default=100)
    rv.add_argument("--format", choices=("table", "json"), default="table")
    rv.set_defaults(handler=cmd_review)


def _item_json(item: QueueItem) -> dict[str, Any]:
    data = asdict(item)
    for key in ("published_at", "matched_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def cmd_review(args: argparse.Namespace) -> int:
    """Dispatch: list, decisions, one verdict, or the interactive walk."""
    from monitor import store
    from monitor.store import reviews

    settings = settings_from(args)
    if args.decisions:
        with store.connect(settings_from(args).store_target, read_only=True) as con:
            columns, rows = reviews.reviews_table(con, args.limit)
        return _print(columns, rows, args.format)
    if args.list:
        with store.connect(settings_from(args).store_target, read_only=True) as con:
            queue = reviews.review_queue(con, args.topic, args.limit, include_reviewed=args.all)
        if args.format == "json":
            json.dump([_item_json(i) for i in queue], sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
            return EXIT_OK
        rows = [
            (i.matched_at, i.topic_id, round(i.score, 3), i.title, i.outlet, i.status, i.article_id)
            for i in queue
        ]
        print_table(
            ["matched_at", "topic", "score", "title", "outlet", "status", "article_id"], rows, sys.stdout
        )
        return EXIT_OK
    if args.article:
        if args.verdict is None:
            return fail("give --relevant or --irrelevant with an article id", EXIT_USAGE)
        return _decide_one(settings, args)
    if args.verdict:
        return fail("--relevant and --irrelevant need an article ID", EXIT_USAGE)
    if not sys.stdin.isatty():
        return fail(
            "interactive review needs a terminal; use --list, or ID --relevant|--irrelevant", EXIT_USAGE
        )
    return _interactive(settings, args)


def _print(columns: list[str], rows: list[tuple], fmt: str) -> int:
    if fmt == "json":
        json.dump(
            [dict(zip(columns, r, strict=True)) for r in rows], sys.stdout, default=str, ensure_ascii=False
        )
        sys.stdout.write("\n")
    else:
        print_table(columns, rows, sys.stdout)
    return EXIT_OK


def _decide_one(settings: Settings, args: argparse.Namespace) -> int:
    from monitor import store
    from monitor.review.decisions import record, reviewer_name
    from monitor.store import reviews

    with store.connect(settings_from(args).store_target, read_only=True) as con:
        keys = reviews.match_keys(con, args.article, args.topic)
        article = store.find_article(con, args.article) if not keys else None
    if not keys:
        if article is None:
            return fail(f"no article matches {args.article!r} in {args.db}")
        if not args.topic:
            return fail(
                f"{article['article_id']} was not flagged for any topic; name one with --topic to record a miss",
                EXIT_USAGE,
            )
        keys = [(article["article_id"], args.topic)]
    if len(keys) > 1:
        return fail(
            f"{args.article} matched {', '.join(t for _, t in keys)}: choose one with --topic", EXIT_USAGE
        )
    article_id, topic_id = keys[0]
    decision = ReviewDecision(article_id, topic_id, args.verdict, reviewer_name(settings), args.note)
    review_id = record(settings, decision, on_wait=lambda line: print(f"monitor: {line}", file=sys.stderr))
    print(
        json.dumps(
            {"review_id": review_id, "article_id": article_id, "topic_id": topic_id, "verdict": args.verdict}
        )
    )
    return EXIT_OK


@contextmanager
def _single_keys(stream: TextIO) -> Iterator[None]:
    """Read keys one at a time without waiting for Enter."""
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_key() -> str:
    return os.read(sys.stdin.fileno(), 1).decode("utf-8", "replace").lower()


def _read_line(prompt: str) -> str:
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[3] |= termios.ICANON | termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, new)
    try:
        return input(prompt).strip()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def render(item: QueueItem, position: int, total: int, color: bool = True) -> str:
    """The screen for one match."""
    from monitor.alerts.messages import NOT_TRANSLATED, highlight

    bold, dim, reset = (BOLD, DIM, RESET) if color else ("", "", "")
    when = item.published_at.strftime("%Y-%m-%d %H:%M") if item.published_at else "date unknown"
    lines = [
        "",
        f"{dim}[{position}/{total}]{reset} {bold}{item.topic_name}{reset}  score {item.score:.3f} "
        f"(threshold {item.threshold:.3f})  {when}  {item.outlet or ''}",
        f"{bold}{item.title or '(no title)'}{reset}",
        f"{dim}{item.url}{reset}",
    ]
    if item.language and item.language != "en":
        lines.append(f"Language: {item.language} ({NOT_TRANSLATED})")
    lines += ["", highlight(item.passage, sorted(item.keyword_hits), bold, reset), "", KEYS]
    return "\n".join(lines)


def _interactive(settings: Settings, args: argparse.Namespace) -> int:
    from monitor import store
    from monitor.review.decisions import record, reviewer_name
    from monitor.store import reviews

    with store.connect(settings_from(args).store_target, read_only=True) as con:
        queue = reviews.review_queue(con, args.topic, args.limit)
    if not queue:
        print("Nothing to review: every flagged match has a verdict.")
        return EXIT_OK
    reviewer = reviewer_name(settings)
    counts = {"relevant": 0, "not-relevant": 0, "skipped": 0}
    color = os.environ.get("NO_COLOR") is None
    with _single_keys(sys.stdin):
        for position, item in enumerate(queue, start=1):
            print(render(item, position, len(queue), color), flush=True)
            note: str | None = None
            while True:
                key = _read_key()
                if key == "q":
                    return _summary(counts)
                if key in ("s", " ", "j"):
                    counts["skipped"] += 1
                    print("skipped", flush=True)
                    break
                if key == "c":
                    note = _read_line("note: ") or None
                    print(f"note kept for this verdict; now {KEYS}", flush=True)
                    continue
                verdict = {"r": "relevant", "y": "relevant", "n": "not-relevant", "x": "not-relevant"}.get(
                    key
                )
                if verdict is None:
                    print(KEYS, flush=True)
                    continue
                decision = ReviewDecision(item.article_id, item.topic_id, verdict, reviewer, note)
                try:
                    record(settings, decision, on_wait=lambda line: print(line, flush=True))
                except store.WriterBusy as exc:
                    print(f"not saved: {exc}", flush=True)
                    return EXIT_FAILED
                counts[verdict] += 1
                print(f"saved: {verdict}" + (f" (note: {note})" if note else ""), flush=True)
                break
    return _summary(counts)


def _summary(counts: dict[str, int]) -> int:
    print(
        f"\n{counts['relevant']} relevant, {counts['not-relevant']} not relevant, {counts['skipped']} skipped."
    )
    return EXIT_OK
