"""A topic edit tried before it goes live: what it adds and removes, and its effect on reviewed items."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb

from monitor import store
from monitor.matching.rescore import score_archive
from monitor.matching.scoring import TopicMatcher
from monitor.review.dry_run import compare
from tests.doubles import PlantedEncoder
from tests.review.conftest import DOWN, UP, planted_db
from tests.review.test_calibration import FIXTURE


def test_a_stricter_threshold_lists_what_goes_and_raises_precision_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    planted_db(db, [*FIXTURE, (17, 0.56, None, None)])  # one look-alike nobody has reviewed yet
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM matches").fetchone()
    edited = [replace(UP, thresholds=(("planted-test", 0.65),)), DOWN]
    with store.connect(db, read_only=True) as con:
        diff = compare(con, score_archive(con, TopicMatcher(edited, PlantedEncoder())))
        after = con.execute("SELECT count(*) FROM matches").fetchone()
    assert after == before  # nothing written
    assert diff.added == []
    # Both topics flagged article 17 at 0.56; only "up" now drops it.
    assert [(t, round(s, 2), title) for _, t, s, title in diff.removed] == [("up", 0.56, "Title 17")]
    assert diff.kept_reviewed == 4  # the four reviewed look-alikes would go, but verdicts stay
    assert diff.after["precision"] > diff.before["precision"]
    assert diff.reviewed == len(FIXTURE)
    assert diff.before["flagged_reviewed"] - diff.after["flagged_reviewed"] == 4


def test_a_looser_threshold_lists_what_it_adds_and_raises_recall(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    planted_db(db, FIXTURE)
    with store.connect(db, read_only=True) as con:
        diff = compare(
            con,
            score_archive(
                con, TopicMatcher([UP, replace(DOWN, thresholds=(("planted-test", 0.4),))], PlantedEncoder())
            ),
        )
    added = {(t, round(s, 2)) for _, t, s, _ in diff.added}
    assert added == {("down", 0.42), ("down", 0.45), ("down", 0.48)}
    assert diff.after["recall"] > diff.before["recall"]
