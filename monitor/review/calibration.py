"""Re-fit each topic's threshold from analysts' verdicts.

Reviewed pairs are scored again with the one scoring function (so the fit is for the
topics and encoder in force, not for the scores of the day they were reviewed). Each
topic's threshold is then chosen on its own reviewed items, for the best F1 (or the most
recall at a target precision), and precision and recall on those items are reported at
the old and the new threshold. Thresholds belong to an encoder, so a routing's encoders are
fitted apart: English verdicts move the English encoder's thresholds, verdicts on coverage
in other languages the multilingual encoder's.

Reviews are mostly of flagged items; to let a threshold move down, review missed stories
too (``monitor review ID --topic T --relevant`` works on any stored article).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import duckdb
import numpy as np

from monitor.evaluation.calibrate import choose_thresholds
from monitor.evaluation.metrics import prf
from monitor.matching.rescore import Matchers, iter_scores, matcher_for, matcher_names
from monitor.store import reviews

MIN_REVIEWS = 4  # fewer verdicts than this say too little to move a threshold


@dataclass(frozen=True)
class TopicFit:
    """One topic's threshold for one encoder, before and after fitting to its verdicts."""

    topic_id: str
    reviewed: int
    relevant: int
    threshold_before: float
    threshold_after: float
    before: dict[str, float]  # precision, recall, f1 on the reviewed items
    after: dict[str, float]
    note: str = ""
    encoder: str = ""


def reviewed_scores(
    con: duckdb.DuckDBPyConnection, matchers: Matchers
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Current scores and labels of every reviewed pair: ``{(topic_id, encoder): (scores, labels)}``.

    A pair whose topic's language rule now excludes its article scores ``-inf``.
    """
    verdicts = reviews.latest_reviews(con)
    wanted = sorted({article for article, _ in verdicts})
    by_key: dict[tuple[str, str], tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    if not wanted:
        return {}
    for ids, _, _, table, model in iter_scores(con, matchers, article_ids=wanted):
        for scores in table:
            topic_id = scores.topic.topic_id
            for i, article_id in enumerate(ids):
                verdict = verdicts.get((article_id, topic_id))
                if verdict is None:
                    continue
                score = float(scores.score[i]) if scores.eligible[i] else float("-inf")
                by_key[(topic_id, model)][0].append(score)
                by_key[(topic_id, model)][1].append(1 if verdict == "relevant" else 0)
    return {k: (np.array(s, dtype=np.float64), np.array(y, dtype=np.int64)) for k, (s, y) in by_key.items()}


def fit_from_reviews(
    con: duckdb.DuckDBPyConnection, matchers: Matchers, target_precision: float | None = None
) -> list[TopicFit]:
    """Choose each topic's threshold, per encoder, on its reviewed items.

    Args:
        con: a connection.
        matchers: the topics in force with the configured encoder, or the routing.
        target_precision: maximise recall at this precision instead of F1.

    Returns:
        One fit per topic in force for the primary encoder, and one per topic for each other
        encoder that embedded reviewed articles (a pair with fewer than ``MIN_REVIEWS``
        verdicts keeps its threshold).
    """
    scored = reviewed_scores(con, matchers)
    names = matcher_names(matchers)
    used = [names[0], *(n for n in names[1:] if any(model == n for _, model in scored))]
    fits: list[TopicFit] = []
    for model in used:
        for topic in matcher_for(matchers, model).topics:
            scores, labels = scored.get((topic.topic_id, model), (np.zeros(0), np.zeros(0, dtype=np.int64)))
            fits.append(_fit(topic.topic_id, model, topic.threshold, scores, labels, target_precision))
    return fits


def _fit(
    topic_id: str,
    model: str,
    threshold: float,
    scores: np.ndarray,
    labels: np.ndarray,
    target_precision: float | None,
) -> TopicFit:
    before = prf(scores >= threshold, labels) if len(scores) else {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    one_kind = int(labels.sum()) in (0, len(labels))
    if len(scores) < MIN_REVIEWS or (one_kind and len(scores) < 2 * MIN_REVIEWS):
        note = f"kept: {len(scores)} verdicts, need at least {MIN_REVIEWS} with both kinds"
        return TopicFit(
            topic_id, len(scores), int(labels.sum()), threshold, threshold, before, before, note, model
        )
    chosen = float(choose_thresholds(scores[:, None], labels, [threshold], target_precision)[0])
    after = prf(scores >= chosen, labels)
    return TopicFit(topic_id, len(scores), int(labels.sum()), threshold, chosen, before, after, "", model)
