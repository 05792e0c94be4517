"""Re-fit each topic's threshold from analysts' verdicts.

Reviewed pairs are scored again with the one scoring function (so the fit is for the
topics and encoder in force, not for the scores of the day they were reviewed). Each
topic's threshold is then chosen on its own reviewed items, for the best F1 (or the most
recall at a target precision), and precision and recall on those items are reported at
the old and the new threshold.

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
from monitor.matching.rescore import iter_scores
from monitor.matching.scoring import TopicMatcher
from monitor.store import reviews

MIN_REVIEWS = 4  # fewer verdicts than this say too little to move a threshold


@dataclass(frozen=True)
class TopicFit:
    """One topic's threshold before and after fitting to its verdicts."""

    topic_id: str
    reviewed: int
    relevant: int
    threshold_before: float
    threshold_after: float
    before: dict[str, float]  # precision, recall, f1 on the reviewed items
    after: dict[str, float]
    note: str = ""


def reviewed_scores(
    con: duckdb.DuckDBPyConnection, matcher: TopicMatcher
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Current scores and labels of every reviewed pair, per topic: ``{topic_id: (scores, labels)}``.

    A pair whose topic's language rule now excludes its article scores ``-inf``.
    """
    verdicts = reviews.latest_reviews(con)
    wanted = sorted({article for article, _ in verdicts})
    by_topic: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    if not wanted:
        return {}
    for ids, _, _, table in iter_scores(con, matcher, article_ids=wanted):
        for scores in table:
            topic_id = scores.topic.topic_id
            for i, article_id in enumerate(ids):
                verdict = verdicts.get((article_id, topic_id))
                if verdict is None:
                    continue
                score = float(scores.score[i]) if scores.eligible[i] else float("-inf")
                by_topic[topic_id][0].append(score)
                by_topic[topic_id][1].append(1 if verdict == "relevant" else 0)
    return {t: (np.array(s, dtype=np.float64), np.array(y, dtype=np.int64)) for t, (s, y) in by_topic.items()}


def fit_from_reviews(
    con: duckdb.DuckDBPyConnection, matcher: TopicMatcher, target_precision: float | None = None
) -> list[TopicFit]:
    """Choose each topic's threshold on its reviewed items.

    Returns:
        One fit per topic in force (a topic with fewer than ``MIN_REVIEWS`` verdicts keeps its threshold).
    """
    scored = reviewed_scores(con, matcher)
    fits: list[TopicFit] = []
    for topic in matcher.topics:
        scores, labels = scored.get(topic.topic_id, (np.zeros(0), np.zeros(0, dtype=np.int64)))
        before = (
            prf(scores >= topic.threshold, labels)
            if len(scores)
            else {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        )
        one_kind = int(labels.sum()) in (0, len(labels))
        if len(scores) < MIN_REVIEWS or (one_kind and len(scores) < 2 * MIN_REVIEWS):
            note = f"kept: {len(scores)} verdicts, need at least {MIN_REVIEWS} with both kinds"
            fits.append(
                TopicFit(
                    topic.topic_id,
                    len(scores),
                    int(labels.sum()),
                    topic.threshold,
                    topic.threshold,
                    before,
                    before,
                    note,
                )
            )
            continue
        chosen = float(choose_thresholds(scores[:, None], labels, [topic.threshold], target_precision)[0])
        after = prf(scores >= chosen, labels)
        fits.append(
            TopicFit(topic.topic_id, len(scores), int(labels.sum()), topic.threshold, chosen, before, after)
        )
    return fits
