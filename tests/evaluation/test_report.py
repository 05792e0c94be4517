"""Evaluation: metrics, labels, baselines, and the topic-matching gate with pinned floors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.evaluation.labels import LabelledItem, LabelsError, load_labels
from monitor.evaluation.metrics import average_precision, prf
from monitor.evaluation.report import KEYWORD_RULE, report, score_items
from monitor.matching.embedding import Encoder
from monitor.matching.topics import load_topics
from tests.conftest import REPO, SHARED

FIXTURE = REPO / "tests/fixtures/topic_eval.jsonl"
DEV_SET = SHARED / "corpora/news/relevance-dev.jsonl"
REFERENCE = SHARED / "seed/reference-article.txt"

# Measured on tests/fixtures/topic_eval.jsonl with the shipped topics.yaml: AP 0.997, F1 0.971.
FIXTURE_AP_FLOOR = 0.97
FIXTURE_F1_FLOOR = 0.90
# Issue #3's bar on the labelled dev set, checked on the half that calibration never saw.
DEV_AP_FLOOR = 0.90
DEV_F1_FLOOR = 0.85


def test_average_precision_matches_hand_computed_values() -> None:
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx(
        (1 + 2 / 3) / 2
    )
    assert average_precision(np.array([0.1, 0.9]), np.array([1, 0])) == pytest.approx(0.5)
    # Ties share one threshold: the two items scored 1.0 count as one step (P 0.5 at R 0.5).
    assert average_precision(np.array([1.0, 1.0, 0.0]), np.array([1, 0, 1])) == pytest.approx(
        0.5 * 0.5 + 0.5 * 2 / 3
    )
    assert average_precision(np.array([0.3]), np.array([0])) == 0.0


def test_prf() -> None:
    assert prf(np.array([True, True, False, False]), np.array([1, 0, 1, 0])) == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
    }
    assert prf(np.array([False]), np.array([1]))["f1"] == 0.0


def test_load_labels_accepts_null_titles_and_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text(
        '{"id": 1, "title": null, "text": "x", "label": 1, "topic": "missiles", "extra": true}\n\n'
        '{"id": "b", "title": "T", "text": "y", "label": 0}\n',
        encoding="utf-8",
    )
    items = load_labels(path)
    assert [(i.item_id, i.title, i.label, i.topic) for i in items] == [
        ("1", None, 1, "missiles"),
        ("b", "T", 0, None),
    ]
    assert {i.half for i in items} <= {"calibration", "holdout"}


@pytest.mark.parametrize(
    "line",
    ['{"id": 1, "text": "x"}', '{"id": 1, "text": "x", "label": 2}', "not json", '{"id": 1, "label": 1}'],
)
def test_load_labels_rejects_bad_lines_with_their_line_number(tmp_path: Path, line: str) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text('{"id": 0, "text": "ok", "label": 0}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"l\.jsonl:2"):
        load_labels(path)
    with pytest.raises(LabelsError, match="not found"):
        load_labels(tmp_path / "none.jsonl")


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("Iran tested a missile", True),
        ("Tehran and the nuclear deal", True),
        ("The Islamic Republic's nuclear programme", True),
        ("North Korea tested a missile", False),
        ("Iranian football team wins", False),
        ("IRGC\n...\nballistic", True),
    ],
)
def test_keyword_rule(text: str, hit: bool) -> None:
    assert bool(KEYWORD_RULE.search(text)) is hit


HALVES_PROBE = """
import json, sys
from monitor.evaluation.labels import LabelledItem
print(json.dumps([LabelledItem(f"id-{i}", None, "t", 0).half for i in range(400)]))
"""


def test_split_halves_are_stable_across_processes_and_balanced() -> None:
    """The split must not depend on Python's per-process hash seed, and must be pinned to sha256 of the id."""
    items = [LabelledItem(f"id-{i}", None, "t", 0) for i in range(400)]
    halves = [it.half for it in items]
    for seed in ("1", "2"):
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", HALVES_PROBE], capture_output=True, text=True, env=env, check=True
        )
        assert json.loads(out.stdout) == halves
    # Pinned: the first byte of sha256("id-0") is 0xa9 (odd: holdout), of sha256("id-3") 0xc0 (even).
    assert LabelledItem("id-0", None, "t", 0).half == "holdout"
    assert LabelledItem("id-3", None, "t", 0).half == "calibration"
    assert 150 < halves.count("calibration") < 250


@pytest.fixture(scope="module")
def fixture_items() -> list[LabelledItem]:
    return load_labels(FIXTURE)


@pytest.mark.slow
def test_eval_gate_on_the_project_fixture_set(fixture_items, encoder: Encoder) -> None:
    """The trafilatura-style gate: the shipped topics must keep these floors."""
    assert len(fixture_items) >= 60
    result = report(fixture_items, load_topics(REPO / "topics.yaml"), encoder)
    assert result["average_precision"] >= FIXTURE_AP_FLOOR, result
    assert result["f1"] >= FIXTURE_F1_FLOOR, result
    assert result["f1"] > result["baselines"]["keyword"]["f1"]


@pytest.mark.slow
def test_passing_mentions_score_below_substantive_articles(fixture_items, encoder: Encoder) -> None:
    kinds = {json.loads(line)["id"]: json.loads(line)["kind"] for line in FIXTURE.read_text().splitlines()}
    margins = score_items(fixture_items, load_topics(REPO / "topics.yaml"), encoder).best_margin
    passing = [
        m for it, m in zip(fixture_items, margins, strict=True) if kinds[it.item_id] == "passing-mention"
    ]
    substantive = [m for it, m in zip(fixture_items, margins, strict=True) if kinds[it.item_id] == "positive"]
    assert len(passing) >= 10
    assert max(passing) < 0, "a passing mention was flagged"
    assert max(passing) < np.median(substantive)


@pytest.mark.slow
@pytest.mark.skipif(not DEV_SET.exists(), reason="shared labelled dev set not present")
def test_dev_set_holdout_half_meets_the_issue_floors() -> None:
    """`monitor evaluate` on the half of the real dev set that calibration did not see."""
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "evaluate", "--labels", str(DEV_SET), "--half", "holdout",
         "--topics", str(REPO / "topics.yaml")]
        + (["--reference", str(REFERENCE)] if REFERENCE.exists() else []),
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["average_precision"] >= DEV_AP_FLOOR, result
    assert result["f1"] >= DEV_F1_FLOOR, result
    assert result["f1"] > result["baselines"]["keyword"]["f1"]
    if "whole_article" in result["baselines"]:
        assert result["average_precision"] > result["baselines"]["whole_article"]["average_precision"]
    assert result["embed_seconds"] > 0 and result["items_per_s"] > 0
