"""What passage length and overlap do to average precision, F1 and embedding work.

Run from the project root (offline; the dev set is the labelled news in ../shared):

    .venv/bin/python bench/passages.py [--labels ../shared/corpora/news/relevance-dev.jsonl]
        [--topics topics.yaml] [--grid 180:30,180:0,120:20,240:30,256:0] [--encoder NAME]

For each ``words:overlap`` pair it splits every labelled article as ingest does, embeds the
passages with the encoder (default: the configured default), scores them through the one
scoring function, and reports: ``passages`` and ``passages_per_article`` (the work),
``embed_s``, ``average_precision``, F1 at the thresholds in ``--topics`` and F1 at
thresholds refitted for that pair (``f1_refit``, in-sample: the refit sees the labels it is
scored on), each pair's AP against the first pair's. Items are routed to one encoder (the
English dev set). The last stdout line is one JSON object; progress goes to stderr. The
script exits with a message when the labels file is absent.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from monitor.evaluation.calibrate import choose_thresholds
from monitor.evaluation.labels import load_labels
from monitor.evaluation.metrics import average_precision, prf
from monitor.evaluation.report import score_items
from monitor.matching.embedding import DEFAULT_EMBEDDER, load_encoder
from monitor.matching.passages import split_passages
from monitor.matching.topics import for_encoder, load_topics

DEFAULT_LABELS = Path("../shared/corpora/news/relevance-dev.jsonl")
DEFAULT_GRID = "180:30,180:0,120:20,240:30,256:0"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--labels", type=Path, default=DEFAULT_LABELS, help="JSON lines with title, text, label"
    )
    parser.add_argument("--topics", type=Path, default=Path("topics.yaml"), help="topic profiles")
    parser.add_argument(
        "--grid", default=DEFAULT_GRID, help="comma-separated words:overlap pairs; the first is the reference"
    )
    parser.add_argument("--encoder", default=DEFAULT_EMBEDDER, help="encoder name (MONITOR_EMBEDDER)")
    args = parser.parse_args()
    if not args.labels.exists():
        log(f"bench/passages.py: {args.labels} not found; pass --labels with a JSON-lines labels file")
        return 2
    items = load_labels(args.labels)
    labels = np.array([it.label for it in items])
    encoder = load_encoder(args.encoder)
    topics = for_encoder(load_topics(args.topics), encoder.name, strict=False)
    encoder.encode_passages(["warm-up: first-call allocations and kernels"] * 32)
    pairs = [tuple(int(x) for x in pair.split(":")) for pair in args.grid.split(",") if pair]
    rows: list[dict[str, object]] = []
    for words, overlap in pairs:
        log(f"{words} words, {overlap} overlap ...")
        scored = score_items(items, topics, encoder, words, overlap)
        margin = scored.best_margin
        refit = choose_thresholds(scored.scores, labels, [t.threshold for t in topics])
        refit_flagged = (scored.scores >= refit[None, :]).any(axis=1)
        passages = sum(len(split_passages(it.title, it.text, words, overlap)) for it in items)
        row: dict[str, object] = {
            "words": words,
            "overlap": overlap,
            "passages": passages,
            "passages_per_article": round(passages / len(items), 2),
            "embed_s": round(scored.embed_seconds, 1),
            # Ranked by margin over the configured thresholds, as `monitor evaluate` ranks.
            "average_precision": round(average_precision(margin, labels), 4),
            "f1_configured": round(prf(margin >= 0, labels)["f1"], 4),
            "f1_refit": round(prf(refit_flagged, labels)["f1"], 4),
            "refit_thresholds": [float(x) for x in refit],
        }
        if rows:
            row["ap_vs_first"] = round(
                float(row["average_precision"]) - float(rows[0]["average_precision"]), 4
            )  # type: ignore[arg-type]
            row["work_vs_first"] = round(passages / float(rows[0]["passages"]), 3)  # type: ignore[arg-type]
        log(json.dumps(row))
        rows.append(row)
    print(json.dumps({"items": len(items), "encoder": encoder.name, "pairs": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
