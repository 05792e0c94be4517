"""``monitor evaluate``, ``calibrate``, ``explain`` and ``rescore``: the topic-matching commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_commands(sub: Any, settings: Any) -> None:
    """Register the topic-matching subcommands on the ``monitor`` parser."""
    ev = sub.add_parser(
        "evaluate",
        help="score labelled articles with the configured topics, beside keyword and whole-article baselines",
        description="Prints progress on stderr and one JSON object as the last line of stdout. "
        "Touches no database.",
    )
    ev.add_argument(
        "--labels", type=Path, required=True, help="JSON lines: {id, title, text, label[, topic]}"
    )
    ev.add_argument(
        "--topics", type=Path, default=settings.topics, help="topic profiles (default: %(default)s)"
    )
    ev.add_argument("--reference", type=Path, help="reference article for the whole-article baseline")
    ev.add_argument(
        "--half", choices=("all", "calibration", "holdout"), default="all",
        help="evaluate on all items or on one half of the split that `calibrate` uses (default: all)",
    )  # fmt: skip

    cal = sub.add_parser(
        "calibrate",
        help="choose topic thresholds on one half of a labels file and report both halves",
        description="Chooses thresholds on the calibration half (by a hash of each id), reports precision "
        "and recall around them, and evaluates on the holdout half. Writes topics.yaml only with --write.",
    )
    cal.add_argument("--labels", type=Path, required=True)
    cal.add_argument("--topics", type=Path, default=settings.topics)
    cal.add_argument("--target-precision", type=float, help="maximise recall at this precision instead of F1")
    cal.add_argument("--write", action="store_true", help="write the chosen thresholds into the topics file")

    ex = sub.add_parser("explain", help="show why an article was flagged: score, passage, exemplar, keywords")
    ex.add_argument("article_id", help="an article id (or a prefix of one, or its URL)")
    ex.add_argument("--db", type=Path, default=settings.db)

    rs = sub.add_parser(
        "rescore", help="recompute all matches from stored passage embeddings after topics.yaml changes"
    )
    rs.add_argument("--db", type=Path, default=settings.db)
    rs.add_argument("--topics", type=Path, default=settings.topics)
    rs.add_argument("--alert", action="store_true", help="queue alerts for articles that newly match")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _load(args: argparse.Namespace) -> tuple[list[Any], list[Any]] | None:
    from monitor.evaluate import LabelsError, load_labels
    from monitor.topics import TopicConfigError, load_topics

    try:
        return load_labels(args.labels), load_topics(args.topics)
    except (LabelsError, TopicConfigError) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return None


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate topics on labelled items; the last stdout line is the JSON report."""
    from monitor.embed import Embedder
    from monitor.evaluate import report

    loaded = _load(args)
    if loaded is None:
        return EXIT_USAGE
    items, topics = loaded
    if args.half != "all":
        items = [it for it in items if it.half == args.half]
    reference = None
    if args.reference is not None:
        try:
            reference = args.reference.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"monitor: cannot read reference article: {exc}", file=sys.stderr)
            return EXIT_USAGE
    _progress(f"monitor: scoring {len(items)} items against {len(topics)} topics")
    result = report(items, topics, Embedder(), reference, progress=_progress)
    print(json.dumps(result))
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Choose thresholds on the calibration half; report both halves; optionally write them."""
    import numpy as np

    from monitor.calibrate import choose_thresholds, curve_around, write_thresholds
    from monitor.embed import Embedder
    from monitor.evaluate import figures, score_items

    loaded = _load(args)
    if loaded is None:
        return EXIT_USAGE
    items, topics = loaded
    _progress(f"monitor: scoring {len(items)} items against {len(topics)} topics")
    scored = score_items(items, topics, Embedder(), progress=_progress)
    labels = np.array([it.label for it in items])
    cal = np.array([it.half == "calibration" for it in items])
    ids = [t.topic_id for t in topics]
    chosen = choose_thresholds(scored.scores[cal], labels[cal], scored.thresholds, args.target_precision)

    def half_figures(mask: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
        margin = (scored.scores[mask] - thresholds).max(axis=1)
        return {
            "n": int(mask.sum()),
            "positives": int(labels[mask].sum()),
            **figures(margin, margin >= 0, labels[mask]),
        }

    print("threshold curve on the calibration half (one topic moves, the others stay at their chosen value):")
    print(f"  {'topic':<16} {'threshold':>9} {'precision':>9} {'recall':>7} {'f1':>6}")
    for p in curve_around(scored.scores[cal], labels[cal], chosen, ids):
        mark = " <" if np.isclose(p.threshold, chosen[ids.index(p.topic_id)]) else ""
        print(f"  {p.topic_id:<16} {p.threshold:9.3f} {p.precision:9.3f} {p.recall:7.3f} {p.f1:6.3f}{mark}")
    new_thresholds = dict(zip(ids, map(float, chosen), strict=True))
    result = {
        "thresholds": new_thresholds,
        "previous_thresholds": dict(zip(ids, map(float, scored.thresholds), strict=True)),
        "calibration": half_figures(cal, chosen),
        "holdout": half_figures(~cal, chosen),
        "objective": f"precision >= {args.target_precision}, max recall"
        if args.target_precision
        else "max F1",
        "written": bool(args.write),
    }
    if args.write:
        write_thresholds(args.topics, new_thresholds)
        _progress(f"monitor: wrote thresholds to {args.topics}")
    print(json.dumps(result))
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the evidence behind an article's matches."""
    from monitor import store

    try:
        with store.connect(args.db, read_only=True) as con:
            article = store.find_article(con, args.article_id)
            if article is None:
                print(f"monitor: no article matches {args.article_id!r} in {args.db}", file=sys.stderr)
                return EXIT_FAILED
            evidence = store.match_evidence(con, article["article_id"])
    except (store.DatabaseMissing, store.DatabaseBusy, store.DatabaseOutdated) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{article['title'] or '(no title)'}")
    print(f"  id {article['article_id']}  {article['site_name'] or ''}  published {article['published_at']}"
          f" ({article['date_method']})  {article['word_count']} words, {article['extract_method']}")  # fmt: skip
    print(f"  {article['url']}")
    if not evidence:
        print("\nNot flagged for any topic.")
    for e in evidence:
        verdict = "flagged" if e["score"] >= e["threshold"] else "below threshold"
        hits = json.loads(e["keyword_hits"]) if e["keyword_hits"] else {}
        print(f"\n[{e['topic_id']}] {verdict}: score {e['score']:.3f} (threshold {e['threshold']:.3f}; "
              f"embedding {e['embedding_score'] if e['embedding_score'] is not None else float('nan'):.3f}), "
              f"status {e['status']}, model {e['model']}")  # fmt: skip
        print(f"  keywords: {', '.join(f'{k} x{v}' for k, v in sorted(hits.items())) or 'none found'}")
        print(f"  closest exemplar: {e['exemplar']}")
        print(f"  best passage (#{e['best_passage_seq']}): {e['best_passage']}")
    return EXIT_OK


def cmd_rescore(args: argparse.Namespace) -> int:
    """Recompute matches from stored embeddings."""
    from monitor import store
    from monitor.embed import Embedder
    from monitor.match import TopicMatcher
    from monitor.rescore import rescore
    from monitor.topics import TopicConfigError, load_topics

    try:
        topics = load_topics(args.topics)
    except TopicConfigError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    matcher = TopicMatcher(topics, Embedder())
    try:
        with store.connect(args.db) as con:
            summary = rescore(con, matcher, alert=args.alert, progress=_progress)
    except (store.DatabaseMissing, store.DatabaseBusy, store.DatabaseOutdated) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(summary))
    return EXIT_OK
