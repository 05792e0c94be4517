"""Thresholds re-fitted from verdicts move the right way, on the scores in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import store
from monitor.matching.scoring import TopicMatcher
from monitor.review.calibration import MIN_REVIEWS, fit_from_reviews, reviewed_scores
from tests.doubles import PlantedEncoder
from tests.review.conftest import DOWN, UP, planted_db

FIXTURE = [
    # "up": relevant well above the threshold, look-alikes just above it (all flagged today).
    *[(n, s, "up", "relevant") for n, s in ((1, 0.70), (2, 0.72), (3, 0.75), (4, 0.80))],
    *[(n, s, "up", "not-relevant") for n, s in ((5, 0.52), (6, 0.55), (7, 0.58), (8, 0.60))],
    # "down": stories it missed (below 0.5) reviewed as relevant, and true negatives far below.
    *[(n, s, "down", "relevant") for n, s in ((9, 0.42), (10, 0.45), (11, 0.48), (12, 0.70), (13, 0.75))],
    *[(n, s, "down", "not-relevant") for n, s in ((14, 0.20), (15, 0.25), (16, 0.30))],
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    planted_db(tmp_path / "m.duckdb", FIXTURE)
    return tmp_path / "m.duckdb"


def test_reviewed_pairs_are_scored_again_with_the_topics_in_force(db: Path) -> None:
    with store.connect(db, read_only=True) as con:
        scored = reviewed_scores(con, TopicMatcher([UP, DOWN], PlantedEncoder()))
    up_scores, up_labels = scored[("up", PlantedEncoder.name)]
    assert sorted(up_scores.round(3).tolist()) == [0.52, 0.55, 0.58, 0.6, 0.7, 0.72, 0.75, 0.8]
    assert up_labels.sum() == 4 and len(scored[("down", PlantedEncoder.name)][0]) == 8


def test_each_threshold_moves_in_the_right_direction_and_figures_improve(db: Path) -> None:
    with store.connect(db, read_only=True) as con:
        fits = {f.topic_id: f for f in fit_from_reviews(con, TopicMatcher([UP, DOWN], PlantedEncoder()))}
    up, down = fits["up"], fits["down"]
    assert 0.60 < up.threshold_after <= 0.70 and up.threshold_after > up.threshold_before
    assert (up.before["precision"], up.after["precision"]) == (0.5, 1.0)
    assert up.after["recall"] == 1.0
    assert 0.30 < down.threshold_after <= 0.42 and down.threshold_after < down.threshold_before
    assert down.before["recall"] == 0.4 and down.after["recall"] == 1.0
    assert down.after["f1"] > down.before["f1"]


def test_a_topic_with_too_few_verdicts_keeps_its_threshold(tmp_path: Path) -> None:
    planted_db(tmp_path / "m.duckdb", [(1, 0.6, "up", "not-relevant"), (2, 0.7, "up", "relevant")])
    with store.connect(tmp_path / "m.duckdb", read_only=True) as con:
        fits = {f.topic_id: f for f in fit_from_reviews(con, TopicMatcher([UP, DOWN], PlantedEncoder()))}
    assert fits["up"].threshold_after == fits["up"].threshold_before == 0.5
    assert f"need at least {MIN_REVIEWS}" in fits["up"].note and fits["down"].reviewed == 0
