"""Choose topic thresholds from labelled items, and write them back to topics.yaml."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.evaluation.metrics import prf
from monitor.matching.topics import TopicConfigError, load_topics


@dataclass(frozen=True)
class CurvePoint:
    """Overall precision and recall when one topic's threshold moves, the others fixed."""

    topic_id: str
    threshold: float
    precision: float
    recall: float
    f1: float


def _objective(scores: np.ndarray, thresholds: np.ndarray, labels: np.ndarray, target: float | None) -> tuple:
    m = prf(np.asarray((scores >= thresholds).any(axis=1)), labels)
    if target is None:
        return (m["f1"], m["precision"])
    # Highest recall among settings that reach the target precision; otherwise the highest precision.
    return (m["precision"] >= target, m["recall"] if m["precision"] >= target else m["precision"], m["f1"])


def _candidates(column: np.ndarray) -> np.ndarray:
    finite = column[np.isfinite(column)]  # -inf: the topic's language rule excludes the item
    values = np.unique(np.round(finite, 4)) if len(finite) else np.array([0.0])
    # Midpoints between observed scores generalise better than the scores themselves.
    mids = (values[:-1] + values[1:]) / 2 if len(values) > 1 else values
    return np.append(mids, values.max() + 1e-3)


def choose_thresholds(
    scores: np.ndarray,
    labels: np.ndarray,
    start: Sequence[float] | np.ndarray,
    target_precision: float | None = None,
    rounds: int = 4,
) -> np.ndarray:
    """Pick one threshold per topic for the best overall decision ("flag if any topic").

    Coordinate ascent: each topic's threshold in turn takes the candidate that is
    best with the others held fixed, until nothing changes.

    Args:
        scores: per-item, per-topic scores (n x topics).
        labels: 1 when the item should be flagged for some topic.
        start: thresholds to start from (the configured ones).
        target_precision: maximise recall subject to this precision instead of F1.
        rounds: passes over the topics at most.

    Returns:
        Thresholds, rounded to 3 decimals.
    """
    candidates = [_candidates(scores[:, t]) for t in range(scores.shape[1])]
    # Ascend from the configured thresholds and from "no topic flags anything"; keep the better.
    starts = [np.array(start, dtype=np.float64), np.array([c[-1] for c in candidates])]
    results = [_ascend(scores, labels, s, candidates, target_precision, rounds) for s in starts]
    best = max(results, key=lambda th: _objective(scores, th, labels, target_precision))
    return np.round(best, 3)


def _ascend(
    scores: np.ndarray,
    labels: np.ndarray,
    thresholds: np.ndarray,
    candidates: list[np.ndarray],
    target_precision: float | None,
    rounds: int,
) -> np.ndarray:
    for _ in range(rounds):
        changed = False
        for t, options in enumerate(candidates):
            best = _objective(scores, thresholds, labels, target_precision)
            for value in options:
                trial = thresholds.copy()
                trial[t] = value
                got = _objective(scores, trial, labels, target_precision)
                if got > best:
                    best, thresholds, changed = got, trial, True
        if not changed:
            break
    return thresholds


def curve_around(
    scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, topic_ids: Sequence[str], steps: int = 4
) -> list[CurvePoint]:
    """Precision/recall points as each topic's threshold moves around the chosen value."""
    points: list[CurvePoint] = []
    for t, topic_id in enumerate(topic_ids):
        for delta in np.linspace(-0.02 * steps, 0.02 * steps, 2 * steps + 1):
            trial = thresholds.copy()
            trial[t] = round(float(thresholds[t] + delta), 3)
            m = prf(np.asarray((scores >= trial).any(axis=1)), labels)
            points.append(CurvePoint(topic_id, float(trial[t]), m["precision"], m["recall"], m["f1"]))
    return points


def write_thresholds(path: Path, thresholds: dict[str, float]) -> None:
    """Set ``threshold`` of each named topic in a topics file, keeping every other line as it is.

    Only the ``threshold:`` line inside each topic's block is rewritten, so comments,
    order and layout survive. The result is loaded again to prove it took.

    Raises:
        TopicConfigError: a topic id is not in the file, or the result does not load.
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    current: str | None = None
    done: set[str] = set()
    for i, line in enumerate(lines):
        found = _ID_LINE.match(line)
        if found:
            current = found.group(2).strip("'\"")
            continue
        setting = _THRESHOLD_LINE.match(line)
        if setting and current in thresholds and current not in done:
            lines[i] = f"{setting.group(1)}{thresholds[current]:.3f}{setting.group(3)}"
            done.add(current)
    missing = set(thresholds) - done
    if missing:
        raise TopicConfigError(f"{path}: no threshold line found for topic(s) {sorted(missing)}")
    new_text = "".join(lines)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    written = {t.topic_id: t.threshold for t in load_topics(tmp)}
    if any(abs(written[k] - v) > 5e-4 for k, v in thresholds.items()):
        tmp.unlink()
        raise TopicConfigError(f"{path}: thresholds did not round-trip; file left unchanged")
    tmp.replace(path)


_ID_LINE = re.compile(r"^\s*(-\s+)?id:\s*(\S+)\s*$")
_THRESHOLD_LINE = re.compile(r"^(\s*threshold:\s*)([-0-9.eE+]+)(\s*(?:#.*)?\n?)$")
