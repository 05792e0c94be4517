"""``monitor evaluate``, ``calibrate``, ``explain``, ``rescore`` and ``reembed``: the topic-matching commands.

Every one of them embeds with the configured encoder (``MONITOR_EMBEDDER``,
``MONITOR_MODEL_PATH``), and the ones that write the database hold the writer lease.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_FAILED, EXIT_OK, fail, progress, settings_from
from monitor.config import Settings


def add_commands(sub: Any, settings: Settings) -> None:
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
    ev.set_defaults(handler=cmd_evaluate)

    cal = sub.add_parser(
        "calibrate",
        help="choose topic thresholds from a labels file, or from analysts' review verdicts (--from-reviews)",
        description="With --labels: chooses thresholds on the calibration half (by a hash of each id), reports "
        "precision and recall around them, and evaluates on the holdout half. With --from-reviews: scores every "
        "reviewed (article, topic) again with the topics in force and fits each topic's threshold to its verdicts, "
        "printing precision and recall on the reviewed items before and after. Writes topics.yaml only with --write.",
    )
    source = cal.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", type=Path, help="JSON lines: {id, title, text, label[, topic, lang]}")
    source.add_argument(
        "--from-reviews", action="store_true", help="fit to the verdicts stored in the database"
    )
    cal.add_argument("--db", type=Path, default=settings.db, help="with --from-reviews: the database")
    cal.add_argument("--topics", type=Path, default=settings.topics)
    cal.add_argument("--target-precision", type=float, help="maximise recall at this precision instead of F1")
    cal.add_argument("--write", action="store_true", help="write the chosen thresholds into the topics file")
    cal.set_defaults(handler=cmd_calibrate)

    ex = sub.add_parser(
        "explain",
        help="show why an article was (or was not) flagged: score, passage, exemplar, keywords",
        description="Prints the evidence stored with each match, then scores the article's stored "
        "vectors live against the topics in force, saying which keyword and language rules applied.",
    )
    ex.add_argument("article_id", help="an article id (or a prefix of one, or its URL)")
    ex.add_argument("--db", type=Path, default=settings.db)
    ex.add_argument("--topics", type=Path, default=settings.topics)
    ex.set_defaults(handler=cmd_explain)

    rs = sub.add_parser(
        "rescore", help="recompute all matches from stored passage embeddings after topics.yaml changes"
    )
    rs.add_argument("--db", type=Path, default=settings.db)
    rs.add_argument("--topics", type=Path, default=settings.topics)
    rs.add_argument("--alert", action="store_true", help="queue alerts for articles that newly match")
    rs.add_argument(
        "--dry-run", action="store_true",
        help="write nothing: list the matches the topics would add or remove, and precision on reviewed items",
    )  # fmt: skip
    rs.add_argument("--format", choices=("table", "json"), default="table", help="with --dry-run")
    rs.set_defaults(handler=cmd_rescore)

    re_ = sub.add_parser(
        "reembed",
        help="re-embed the stored archive with the configured encoder (resumable)",
        description="Replaces the passages of every article whose vectors are missing or come from another "
        "encoder, in bounded batches with progress; a killed run picks up where it stopped. Run "
        "`monitor rescore` afterwards, with thresholds fitted for the new encoder.",
    )
    re_.add_argument("--db", type=Path, default=settings.db)
    re_.add_argument(
        "--batch-articles", type=int, default=256, help="articles per batch (default: %(default)s)"
    )
    re_.set_defaults(handler=cmd_reembed)


def _items(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    from monitor.evaluation.labels import load_labels
    from monitor.matching.topics import load_topics

    return load_labels(args.labels), load_topics(args.topics)


def _routing(settings: Settings, topics: list[Any]) -> Any:
    from monitor.matching.routing import load_routing

    return load_routing(topics, strict=False, **settings.routing_options())


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate topics on labelled items; the last stdout line is the JSON report."""
    from monitor.evaluation.report import report

    settings = settings_from(args)
    items, topics = _items(args)
    if args.half != "all":
        items = [it for it in items if it.half == args.half]
    reference = None
    if args.reference is not None:
        try:
            reference = args.reference.read_text(encoding="utf-8")
        except OSError as exc:
            return fail(f"cannot read reference article: {exc}", 2)
    routing = _routing(settings, topics)
    progress(
        f"monitor: scoring {len(items)} items against {len(topics)} topics with {' / '.join(routing.names)}"
    )
    result = report(
        items, topics, routing, reference, progress, settings.passage_words, settings.passage_overlap_words
    )
    print(json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Choose thresholds on the calibration half, for each encoder on the items routed to it; optionally write them."""
    if args.from_reviews:
        return _calibrate_from_reviews(args)
    import numpy as np

    from monitor.evaluation.calibrate import choose_thresholds, curve_around, write_thresholds
    from monitor.evaluation.metrics import figures
    from monitor.evaluation.report import score_items

    settings = settings_from(args)
    items, topics = _items(args)
    routing = _routing(settings, topics)
    progress(
        f"monitor: scoring {len(items)} items against {len(topics)} topics with {' / '.join(routing.names)}"
    )
    scored = score_items(
        items, topics, routing, settings.passage_words, settings.passage_overlap_words, progress
    )
    labels = np.array([it.label for it in items])
    cal = np.array([it.half == "calibration" for it in items])
    ids = [t.topic_id for t in topics]
    fitted = scored.thresholds.copy()
    per_encoder: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(scored.encoders):
        mine = np.array([e == name for e in scored.encoders])
        start = scored.thresholds[mine][0]
        chosen = choose_thresholds(
            scored.scores[cal & mine], labels[cal & mine], start, args.target_precision
        )
        fitted[mine] = chosen
        print(f"{name}: threshold curve on its {int((cal & mine).sum())} calibration items "
              "(one topic moves, the others stay at their chosen value):")  # fmt: skip
        print(f"  {'topic':<16} {'threshold':>9} {'precision':>9} {'recall':>7} {'f1':>6}")
        for p in curve_around(scored.scores[cal & mine], labels[cal & mine], chosen, ids):
            mark = " <" if np.isclose(p.threshold, chosen[ids.index(p.topic_id)]) else ""
            print(
                f"  {p.topic_id:<16} {p.threshold:9.3f} {p.precision:9.3f} {p.recall:7.3f} {p.f1:6.3f}{mark}"
            )
        per_encoder[name] = {
            "items": int(mine.sum()),
            "thresholds": dict(zip(ids, map(float, chosen), strict=True)),
            "previous_thresholds": dict(zip(ids, map(float, start), strict=True)),
        }

    def half_figures(mask: np.ndarray) -> dict[str, Any]:
        margin = (scored.scores[mask] - fitted[mask]).max(axis=1)
        return {
            "n": int(mask.sum()),
            "positives": int(labels[mask].sum()),
            **figures(margin, margin >= 0, labels[mask]),
        }

    only = next(iter(per_encoder.values())) if len(per_encoder) == 1 else None
    result = {
        "encoder": next(iter(per_encoder)) if only else list(per_encoder),
        "thresholds": only["thresholds"] if only else {k: v["thresholds"] for k, v in per_encoder.items()},
        "previous_thresholds": only["previous_thresholds"]
        if only
        else {k: v["previous_thresholds"] for k, v in per_encoder.items()},
        "per_encoder": per_encoder,
        "calibration": half_figures(cal),
        "holdout": half_figures(~cal),
        "objective": f"precision >= {args.target_precision}, max recall"
        if args.target_precision
        else "max F1",
        "written": bool(args.write),
    }
    if args.write:
        for name, fit in per_encoder.items():
            write_thresholds(args.topics, fit["thresholds"], name)
            progress(f"monitor: wrote thresholds for {name} to {args.topics}")
    print(json.dumps(result))
    return EXIT_OK


def _calibrate_from_reviews(args: argparse.Namespace) -> int:
    from monitor import store
    from monitor.evaluation.calibrate import write_thresholds
    from monitor.matching.topics import load_topics
    from monitor.review.calibration import fit_from_reviews

    settings = settings_from(args)
    routing = _routing(settings, load_topics(args.topics))
    with store.connect(settings_from(args).store_target, read_only=True) as con:
        fits = fit_from_reviews(con, routing, args.target_precision)
    print("thresholds fitted to review verdicts (precision / recall / F1 on the reviewed items):")
    print(
        f"  {'topic':<16} {'encoder':<22} {'reviews':>7} {'relevant':>8} {'before':>7} {'after':>7}   {'before P/R/F1':<20} after P/R/F1"
    )
    for f in fits:
        b, a = f.before, f.after
        print(f"  {f.topic_id:<16} {f.encoder:<22} {f.reviewed:>7} {f.relevant:>8} {f.threshold_before:7.3f} {f.threshold_after:7.3f}   "
              f"{b['precision']:.3f}/{b['recall']:.3f}/{b['f1']:.3f}       {a['precision']:.3f}/{a['recall']:.3f}/{a['f1']:.3f}"
              f"{'   ' + f.note if f.note else ''}")  # fmt: skip
    changed: dict[str, dict[str, float]] = {}
    for f in fits:
        if abs(f.threshold_after - f.threshold_before) > 5e-4:
            changed.setdefault(f.encoder, {})[f.topic_id] = f.threshold_after
    if args.write and changed:
        for encoder, thresholds in changed.items():
            write_thresholds(args.topics, thresholds, encoder)
        progress(
            f"monitor: wrote thresholds to {args.topics}; `monitor rescore --dry-run` shows their effect"
        )
    print(
        json.dumps(
            {
                "encoders": routing.names,
                "fits": [f.__dict__ for f in fits],
                "written": bool(args.write and changed),
            }
        )
    )
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the evidence behind an article's matches, then its live scores against the topics in force."""
    from monitor import store
    from monitor.matching.explain import explain_stored
    from monitor.matching.topics import load_topics

    settings = settings_from(args)
    topics = load_topics(args.topics)
    with store.connect(settings_from(args).store_target, read_only=True) as con:
        article = store.find_article(con, args.article_id)
        if article is None:
            return fail(f"no article matches {args.article_id!r} in {args.db}", EXIT_FAILED)
        evidence = store.match_evidence(con, article["article_id"])
        live = explain_stored(con, _routing(settings, topics), article)
    print(f"{article['title'] or '(no title)'}")
    print(f"  id {article['article_id']}  {article['site_name'] or ''}  published {article['published_at']}"
          f" ({article['date_method']})  {article['word_count']} words, {article['extract_method']}, "
          f"language {article['language'] or 'unknown'}")  # fmt: skip
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
    print(f"\nScored now against {args.topics}:")
    if isinstance(live, str):
        print(f"  not scored: {live}")
        return EXIT_OK
    for v in live:
        mark = "flagged" if v.flagged else "not flagged"
        print(f"  [{v.topic_id}] {mark}: score {v.score:.3f} (threshold {v.threshold:.3f} for {v.encoder}; embedding "
              f"{v.embedding_score:.3f}); keywords: {v.keyword_rule}; language: {v.language_rule}")  # fmt: skip
        print(f"    closest exemplar: {v.exemplar}")
        print(f"    best passage (#{v.passage_seq}): {v.passage[:200]}")
    return EXIT_OK


def cmd_rescore(args: argparse.Namespace) -> int:
    """Recompute matches from stored embeddings, holding the writer lease (or, with --dry-run, write nothing)."""
    from monitor.matching.rescore import rescore_store
    from monitor.matching.routing import load_routing
    from monitor.matching.topics import load_topics

    settings = settings_from(args)
    if args.dry_run:
        return _dry_run(args, load_routing(load_topics(args.topics), **settings.routing_options()))
    print(json.dumps(rescore_store(settings, alert=args.alert, progress=progress)))
    return EXIT_OK


def cmd_reembed(args: argparse.Namespace) -> int:
    """Re-embed the archive with the configured encoder, holding the writer lease."""
    from monitor import store
    from monitor.matching.reembed import reembed

    settings = settings_from(args)
    if settings.store == "duckdb" and not args.db.exists():
        return fail(f"database not found: {args.db}", EXIT_FAILED)
    from monitor.matching.topics import load_topics

    routing = _routing(settings, load_topics(settings.topics))
    target = settings.store_target
    with store.writer_lease(target, "monitor reembed", settings.db_lock_timeout_s, on_wait=progress):
        result = reembed(
            lambda: store.connect(target, lock_timeout_s=settings.db_lock_timeout_s),
            routing,
            settings.passage_words,
            settings.passage_overlap_words,
            batch_articles=args.batch_articles,
            progress=progress,
        )
    names = " / ".join(routing.names)
    print(json.dumps({"encoder": names, **result.__dict__}))
    if result.articles:
        progress(f"monitor: now run `monitor rescore --db {args.db}` to score the archive with {names}")
    return EXIT_OK


def _dry_run(args: argparse.Namespace, matcher: Any) -> int:
    import sys

    from monitor import store
    from monitor.cli.common import print_table
    from monitor.matching.rescore import score_archive
    from monitor.review.dry_run import compare

    with store.connect(settings_from(args).store_target, read_only=True) as con:
        diff = compare(con, score_archive(con, matcher, progress=progress))
    if args.format == "json":
        print(json.dumps(diff.__dict__, default=str))
        return EXIT_OK
    for label, rows in (("would be added", diff.added), ("would be removed (unreviewed)", diff.removed)):
        print(f"\n{len(rows)} matches {label}:")
        if rows:
            print_table(
                ["article_id", "topic", "score", "title"],
                [(a, t, round(s, 3), ti) for a, t, s, ti in rows],
                sys.stdout,
            )
    if diff.kept_reviewed:
        print(
            f"\n{diff.kept_reviewed} reviewed matches would no longer qualify; they are kept (verdicts are never undone)."
        )
    b, a = diff.before, diff.after
    print(
        f"\nOn the {diff.reviewed} reviewed (article, topic) pairs: precision {b['precision']:.3f} -> {a['precision']:.3f}, "
        f"recall {b['recall']:.3f} -> {a['recall']:.3f} (flagged reviewed pairs {b['flagged_reviewed']:.0f} -> "
        f"{a['flagged_reviewed']:.0f}). Nothing was written."
    )
    return EXIT_OK
