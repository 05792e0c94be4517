"""Ranking and decision metrics: average precision, precision, recall, F1."""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of a ranking (ties share one threshold, as in scikit-learn)."""
    positives = int(labels.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_tie = np.append(np.diff(s) != 0, True)
    tp = np.cumsum(y)[last_of_tie]
    seen = (np.arange(1, len(y) + 1))[last_of_tie]
    precision = tp / seen
    recall = tp / positives
    return float(np.sum(np.diff(np.append(0.0, recall)) * precision))


def prf(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of binary predictions."""
    tp = int((predicted & (labels == 1)).sum())
    flagged, positives = int(predicted.sum()), int(labels.sum())
    precision = tp / flagged if flagged else 0.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold with the highest F1 (used only to give baselines their best case)."""
    best_f1, best_t = -1.0, float(scores.max()) if len(scores) else 0.0
    for t in np.unique(scores):
        f1 = prf(scores >= t, labels)["f1"]
        if f1 > best_f1:
            best_f1, best_t = f1, float(t)
    return best_t


def figures(ranking: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Average precision of a ranking plus P/R/F1 of a decision."""
    return {"average_precision": round(average_precision(ranking, labels), 4), **prf(predicted, labels)}
