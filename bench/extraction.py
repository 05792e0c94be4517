"""Article-extraction quality on the ScrapingHub article-extraction benchmark layout.

Usage: python bench/extraction.py --corpus DIR

DIR holds ``html/<id>.html.gz`` and ``ground-truth.json`` (``{id: {"articleBody", "url"}}``).
Scores the project's extraction path and plain ``trafilatura.extract`` side by side, the way
the benchmark's evaluate.py defines them: ``\\w+`` tokens, 4-token shingles, per-page
precision and recall from shingle multisets (pages with nothing predicted or nothing
expected skipped; a page with no errors scores 1), averaged over pages; F1 from the means.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.ingest.extraction import extract_text

TOKEN = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(len(tokens) - n + 1, 1)) if tokens)


def page_pr(predicted: str, expected: str) -> tuple[float, float] | None:
    pred, true = shingles(predicted), shingles(expected)
    tp = sum((pred & true).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    if fp == fn == 0:
        return 1.0, 1.0
    if tp + fp == 0 or tp + fn == 0:
        return None
    return tp / (tp + fp), tp / (tp + fn)


def score(outputs: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    precisions, recalls = [], []
    for key, expected in truth.items():
        pr = page_pr(outputs.get(key, ""), expected)
        if pr is None:
            continue
        precisions.append(pr[0])
        recalls.append(pr[1])
    p = sum(precisions) / len(precisions)
    r = sum(recalls) / len(recalls)
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4)}


def run(
    name: str, fn: Callable[[str, str], str], pages: dict[str, tuple[str, str]]
) -> tuple[dict[str, str], float]:
    started = time.monotonic()
    out = {key: fn(html, url) or "" for key, (html, url) in pages.items()}
    elapsed = time.monotonic() - started
    print(f"{name}: {len(pages)} pages in {elapsed:.1f} s", file=sys.stderr)
    return out, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, required=True, help="benchmark directory (html/, ground-truth.json)"
    )
    args = parser.parse_args()
    truth_raw = json.loads((args.corpus / "ground-truth.json").read_text(encoding="utf-8"))
    truth = {k: v.get("articleBody") or "" for k, v in truth_raw.items()}
    pages = {}
    for key, item in truth_raw.items():
        with gzip.open(args.corpus / "html" / f"{key}.html.gz", "rb") as fh:
            pages[key] = (fh.read().decode("utf-8", errors="replace"), item.get("url") or "")
    project, t_project = run("project", lambda html, url: extract_text(html, url), pages)
    plain, t_plain = run("trafilatura.extract", lambda html, url: trafilatura.extract(html, url=url), pages)
    result = {
        "n": len(pages),
        "project": {**score(project, truth), "seconds": round(t_project, 2)},
        "plain_trafilatura": {**score(plain, truth), "seconds": round(t_plain, 2)},
        "trafilatura_version": trafilatura.__version__ if hasattr(trafilatura, "__version__") else None,
    }
    result["f1_gain"] = round(result["project"]["f1"] - result["plain_trafilatura"]["f1"], 4)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
