"""Passages per second of each embedding backend, side by side, on the same real passages.

Run from the project root (offline: every model is local; the ONNX exports are built from
the bundled model the first time and cached in the user cache directory):

    .venv/bin/python bench/encoders.py [--labels ../shared/corpora/news/relevance-dev.jsonl]
        [--passages 320] [--encoders all-MiniLM-L6-v2,all-MiniLM-L6-v2-onnx,...] [--repeat 2]

The passages are the first ``--passages`` 180-word passages (30 words of overlap, as ingest
splits them) of the labelled articles in ``--labels`` (a JSON-lines file with ``title`` and
``text``; the script exits with a message when it is absent). Each encoder is loaded
(``load_s``; an ONNX export built on this run is in it), warmed up on one batch, then times
``encode_passages`` over all passages ``--repeat`` times; the best repeat counts. For each
backend it prints ``passages_per_s``, ``ratio`` against the first encoder in the list (the
baseline, PyTorch by default), and the mean and minimum cosine of its vectors against the
baseline's (same vector space only: the multilingual model is not compared). The last stdout
line is one JSON object; progress goes to stderr. Quality on the dev set is
``monitor evaluate`` with ``MONITOR_EMBEDDER`` set to the backend (see README, Benchmarks).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from monitor.evaluation.labels import load_labels
from monitor.matching.embedding import load_encoder
from monitor.matching.passages import split_passages

DEFAULT_LABELS = Path("../shared/corpora/news/relevance-dev.jsonl")
DEFAULT_ENCODERS = "all-MiniLM-L6-v2,all-MiniLM-L6-v2-onnx,all-MiniLM-L6-v2-onnx-int8,all-MiniLM-L6-v2-openvino,multilingual-e5-small"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def passages_from(labels: Path, count: int) -> list[str]:
    """The first ``count`` passages of the labelled articles, split as ingest splits them."""
    out: list[str] = []
    for item in load_labels(labels):
        out.extend(split_passages(item.title, item.text, 180, 30))
        if len(out) >= count:
            break
    return out[:count]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="JSON lines with title and text")
    parser.add_argument("--passages", type=int, default=320, help="passages to embed per repeat")
    parser.add_argument(
        "--encoders", default=DEFAULT_ENCODERS, help="comma-separated; the first is the baseline"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed repeats per encoder (the best counts)")
    args = parser.parse_args()
    if not args.labels.exists():
        log(f"bench/encoders.py: {args.labels} not found; pass --labels with a JSON-lines file of articles")
        return 2
    passages = passages_from(args.labels, args.passages)
    words = sum(len(p.split()) for p in passages) / max(len(passages), 1)
    log(f"{len(passages)} passages, {words:.0f} words on average")
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    results = []
    baseline_vectors: np.ndarray | None = None
    baseline_rate = None
    for name in names:
        started = time.perf_counter()
        encoder = load_encoder(name)
        load_s = time.perf_counter() - started
        encoder.encode_passages(passages[:32])  # warm-up: first-call allocations and kernels
        best = float("inf")
        vectors = np.zeros((0, encoder.dim))
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            vectors = encoder.encode_passages(passages)
            best = min(best, time.perf_counter() - t0)
        rate = len(passages) / best
        row: dict[str, object] = {
            "encoder": encoder.name,
            "passages_per_s": round(rate, 1),
            "seconds": round(best, 2),
            "load_s": round(load_s, 2),
            "dim": encoder.dim,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        if baseline_rate is None:
            baseline_rate, baseline_vectors = rate, vectors
        row["ratio"] = round(rate / baseline_rate, 2)
        same_space = "e5" not in encoder.name  # another model's space: cosines mean nothing
        comparable = baseline_vectors is not None and vectors.shape == baseline_vectors.shape
        if comparable and same_space and name != names[0]:
            cos = (vectors * baseline_vectors).sum(axis=1)
            row["cosine_vs_baseline_mean"] = round(float(cos.mean()), 5)
            row["cosine_vs_baseline_min"] = round(float(cos.min()), 5)
        log(json.dumps(row))
        results.append(row)
        del encoder
    print(json.dumps({"passages": len(passages), "mean_words": round(words, 1), "encoders": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
