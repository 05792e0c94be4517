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


def write_thresholds(path: Path, thresholds: dict[str, float], encoder: str | None = None) -> None:
    """Set each named topic's threshold for an encoder in a topics file, keeping every other line as it is.

    For the default model (``encoder`` None or one of its backends: PyTorch, ONNX fp32, OpenVINO,
    which share one threshold) the topic's ``threshold:`` line is rewritten; for another encoder its entry under ``thresholds:`` is set (the mapping is
    added after ``threshold:`` when the topic has none), so a model switch never overwrites
    thresholds fitted for another model. Comments, order and layout survive; the result is
    loaded again to prove it took.

    Raises:
        TopicConfigError: a topic id is not in the file, or the result does not load.
    """
    from monitor.matching.embedding.encoder import DEFAULT_ENCODER, DEFAULT_ENCODER_BACKENDS
    from monitor.matching.topics import threshold_for

    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if encoder is None or encoder in DEFAULT_ENCODER_BACKENDS:
        done = _set_threshold_lines(lines, thresholds)
    else:
        done = _set_encoder_thresholds(lines, thresholds, encoder)
    missing = set(thresholds) - done
    if missing:
        raise TopicConfigError(f"{path}: no threshold line found for topic(s) {sorted(missing)}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    written = {t.topic_id: threshold_for(t, encoder or DEFAULT_ENCODER) for t in load_topics(tmp)}
    if any(written.get(k) is None or abs(written[k] - v) > 5e-4 for k, v in thresholds.items()):  # type: ignore[operator]
        tmp.unlink()
        raise TopicConfigError(f"{path}: thresholds did not round-trip; file left unchanged")
    tmp.replace(path)


def _topic_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Each topic's line range ``[start, end)`` in a topics file, by its ``- id:`` line."""
    starts = [(i, m.group(2).strip("'\"")) for i, line in enumerate(lines) if (m := _ID_LINE.match(line))]
    return {
        tid: (i, starts[n + 1][0] if n + 1 < len(starts) else len(lines)) for n, (i, tid) in enumerate(starts)
    }


def _set_threshold_lines(lines: list[str], thresholds: dict[str, float]) -> set[str]:
    done: set[str] = set()
    for topic_id, (start, end) in _topic_blocks(lines).items():
        if topic_id not in thresholds:
            continue
        for i in range(start, end):
            setting = _THRESHOLD_LINE.match(lines[i])
            if setting:
                lines[i] = f"{setting.group(1)}{thresholds[topic_id]:.3f}{setting.group(3)}"
                done.add(topic_id)
                break
    return done


def _set_encoder_thresholds(lines: list[str], thresholds: dict[str, float], encoder: str) -> set[str]:
    done: set[str] = set()
    # Bottom-up, so inserting lines leaves the ranges of the topics still to do in place.
    for topic_id, (start, end) in sorted(_topic_blocks(lines).items(), key=lambda kv: -kv[1][0]):
        if topic_id not in thresholds:
            continue
        value = f"{thresholds[topic_id]:.3f}"
        block = range(start, end)
        header = next((i for i in block if re.match(r"^\s*thresholds:\s*(#.*)?$", lines[i])), None)
        if header is not None:
            indent = len(lines[header]) - len(lines[header].lstrip()) + 2
            entry = next(
                (
                    i
                    for i in range(header + 1, end)
                    if re.match(rf"^\s{{{indent}}}{re.escape(encoder)}:\s", lines[i])
                ),
                None,
            )
            if entry is not None:
                lines[entry] = f"{' ' * indent}{encoder}: {value}\n"
            else:
                lines.insert(header + 1, f"{' ' * indent}{encoder}: {value}\n")
            done.add(topic_id)
            continue
        anchor = next((i for i in block if _THRESHOLD_LINE.match(lines[i])), None)
        if anchor is None:
            continue
        indent = len(lines[anchor]) - len(lines[anchor].lstrip())
        lines[anchor + 1 : anchor + 1] = [
            f"{' ' * indent}thresholds:\n",
            f"{' ' * (indent + 2)}{encoder}: {value}\n",
        ]
        done.add(topic_id)
    return done


_ID_LINE = re.compile(r"^\s*(-\s+)?id:\s*(\S+)\s*$")
_THRESHOLD_LINE = re.compile(r"^(\s*threshold:\s*)([-0-9.eE+]+)(\s*(?:#.*)?\n?)$")
