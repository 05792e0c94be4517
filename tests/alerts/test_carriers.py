"""One alert per story and topic, carried by a deterministic copy."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from monitor.alerts.carriers import alert_id, choose_carriers
from monitor.models import AlertCandidate

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)
T1 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_the_storys_first_article_carries_its_alert() -> None:
    candidates = [
        AlertCandidate("copy-early", "t", "story", T0),
        AlertCandidate("story", "t", "story", T1),
    ]
    (alert,) = choose_carriers(candidates)
    assert (alert.article_id, alert.topic_id, alert.alert_id) == ("story", "t", alert_id("story", "t"))


def test_otherwise_the_earliest_published_copy_then_the_smallest_id() -> None:
    candidates = [
        AlertCandidate("b", "t", "story", T1),
        AlertCandidate("c", "t", "story", None),
        AlertCandidate("z", "t", "story", T0),
        AlertCandidate("a", "t", "story", T0),
    ]
    for order in itertools.permutations(candidates):
        assert [a.article_id for a in choose_carriers(list(order))] == ["a"]


def test_one_alert_per_story_and_topic() -> None:
    candidates = [
        AlertCandidate("s1", "t1", "s1", T0),
        AlertCandidate("s1", "t2", "s1", T0),
        AlertCandidate("x", "t1", "s1", T1),
        AlertCandidate("s2", "t1", "s2", T1),
    ]
    chosen = {(a.alert_id, a.article_id) for a in choose_carriers(candidates)}
    assert chosen == {
        (alert_id("s1", "t1"), "s1"),
        (alert_id("s1", "t2"), "s1"),
        (alert_id("s2", "t1"), "s2"),
    }
    assert alert_id("s1", "t1") != alert_id("s1", "t2") != alert_id("s2", "t1")
