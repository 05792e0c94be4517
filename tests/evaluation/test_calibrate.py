"""Threshold choice and writing thresholds back to topics.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from monitor.evaluation.calibrate import choose_thresholds, curve_around, write_thresholds
from monitor.matching.topics import TopicConfigError, load_topics
from tests.conftest import REPO


def test_choose_thresholds_separates_two_topics() -> None:
    # Topic 0 flags items 0-2, topic 1 flags items 3-5; items 6-9 are negatives with middling scores.
    scores = np.array(
        [[0.9, 0.1], [0.8, 0.2], [0.7, 0.1], [0.1, 0.6], [0.2, 0.65], [0.1, 0.7],
         [0.5, 0.3], [0.4, 0.5], [0.3, 0.4], [0.2, 0.2]]
    )  # fmt: skip
    labels = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    chosen = choose_thresholds(scores, labels, start=[0.0, 0.0])
    assert 0.5 < chosen[0] <= 0.7 and 0.5 < chosen[1] <= 0.6
    assert ((scores >= chosen).any(axis=1) == labels.astype(bool)).all()


def test_target_precision_trades_recall_for_precision() -> None:
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]])
    labels = np.array([1, 1, 0, 1, 0, 1])
    by_f1 = choose_thresholds(scores, labels, start=[0.0])
    strict = choose_thresholds(scores, labels, start=[0.0], target_precision=1.0)
    assert strict[0] > by_f1[0]
    assert ((scores[:, 0] >= strict[0]) <= labels.astype(bool)).all()
    points = curve_around(scores, labels, strict, ["t"], steps=2)
    assert len(points) == 5 and {p.topic_id for p in points} == {"t"}


def test_write_thresholds_changes_only_threshold_lines(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    shutil.copy(REPO / "topics.yaml", path)
    before = path.read_text(encoding="utf-8").splitlines()
    write_thresholds(path, {"jcpoa-talks": 0.4321})
    after = path.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].strip() == "threshold: 0.432"
    assert {t.topic_id: t.threshold for t in load_topics(path)}["jcpoa-talks"] == 0.432


def test_write_thresholds_refuses_unknown_topics(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    shutil.copy(REPO / "topics.yaml", path)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(TopicConfigError, match="no-such-topic"):
        write_thresholds(path, {"no-such-topic": 0.5})
    assert path.read_text(encoding="utf-8") == before


def test_writing_another_encoders_thresholds_leaves_the_default_ones_alone(tmp_path: Path) -> None:
    from monitor.matching.topics import threshold_for

    path = tmp_path / "topics.yaml"
    path.write_text((REPO / "topics.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    before = {t.topic_id: t.threshold for t in load_topics(path)}
    write_thresholds(path, {"iran-missiles": 0.861, "jcpoa-talks": 0.853}, "multilingual-e5-small")
    write_thresholds(path, {"iran-missiles": 0.87}, "multilingual-e5-small")  # an update, not a second entry
    topics = {t.topic_id: t for t in load_topics(path)}
    assert {k: t.threshold for k, t in topics.items()} == before
    assert threshold_for(topics["iran-missiles"], "multilingual-e5-small") == 0.87
    assert threshold_for(topics["jcpoa-talks"], "multilingual-e5-small") == 0.853
    assert path.read_text(encoding="utf-8").count("multilingual-e5-small:") == 2
    assert "# Lexical evidence" in path.read_text(encoding="utf-8")  # comments survive
