"""The cross-lingual gate: English topics flag coverage in nine languages, with pinned floors.

The fixture (tests/fixtures/crosslingual.jsonl, written for this project) holds 81 articles:
nine languages x (3 on-topic, 2 look-alikes about other countries' missiles or talks, 2
Iranian news on other subjects, 1 passing mention, 1 unrelated). The e5 thresholds in
topics.yaml were fitted on its calibration half, so the whole-fixture figures are optimistic
and the holdout half is checked beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from monitor.config import Settings
from monitor.evaluation.labels import LabelledItem, load_labels
from monitor.evaluation.metrics import figures
from monitor.evaluation.report import ItemScores, by_language, report, score_items
from monitor.matching.embedding import Encoder
from monitor.matching.routing import load_routing
from monitor.matching.topics import load_topics
from tests.conftest import REPO

pytestmark = pytest.mark.slow

FIXTURE = REPO / "tests/fixtures/crosslingual.jsonl"

# Measured with the shipped configuration (English -> all-MiniLM-L6-v2, the rest ->
# multilingual-e5-small): AP 0.983, F1 0.926 on all 81; holdout half AP 0.969, F1 0.867.
# MiniLM alone on the same items: AP 0.721, F1 0.313.
ROUTED_AP_FLOOR = 0.97
ROUTED_F1_FLOOR = 0.90
HOLDOUT_AP_FLOOR = 0.95
HOLDOUT_F1_FLOOR = 0.85
# Every language's items rank well even where a threshold misses (German recall is 1/3).
LANGUAGE_AP_FLOOR = 0.90


@pytest.fixture(scope="module")
def items() -> list[LabelledItem]:
    return load_labels(FIXTURE)


@pytest.fixture(scope="module")
def scored(items: list[LabelledItem]) -> ItemScores:
    """The fixture scored once with the shipped configuration, as `monitor evaluate` scores it."""
    topics = load_topics(REPO / "topics.yaml")
    return score_items(items, topics, load_routing(topics, **Settings().routing_options()))


@pytest.fixture(scope="module")
def routed(items: list[LabelledItem], scored: ItemScores) -> dict:
    labels = np.array([it.label for it in items])
    margin = scored.best_margin
    return {
        **figures(margin, margin >= 0, labels),
        "encoders": sorted(set(scored.encoders)),
        "by_language": by_language(items, scored, labels),
    }


def test_the_fixture_is_what_the_issue_asks_for(items: list[LabelledItem]) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    languages = {it.lang for it in items}
    assert len(items) >= 60 and len(languages) >= 8 and {"fa", "ar"} <= languages
    assert {r["topic"] for r in rows if r["label"] == 1} >= {"missiles", "nuclear-talks"}
    assert {r["kind"] for r in rows} >= {"positive", "look-alike", "other-iran", "passing-mention"}


def test_shipped_routing_meets_the_floors_and_beats_minilm_alone(
    items: list[LabelledItem], routed: dict, encoder: Encoder
) -> None:
    minilm = report(items, load_topics(REPO / "topics.yaml"), encoder)  # MiniLM for every language
    print(
        f"routed AP {routed['average_precision']} F1 {routed['f1']};"
        f" MiniLM alone AP {minilm['average_precision']} F1 {minilm['f1']}"
    )
    assert routed["encoders"] == ["all-MiniLM-L6-v2-openvino", "multilingual-e5-small"]
    assert routed["average_precision"] >= ROUTED_AP_FLOOR, routed
    assert routed["f1"] >= ROUTED_F1_FLOOR, routed
    assert minilm["encoder"] == "all-MiniLM-L6-v2-openvino"
    assert routed["average_precision"] > minilm["average_precision"] + 0.15
    assert routed["f1"] > minilm["f1"] + 0.4


def test_every_language_is_routed_and_ranked(routed: dict) -> None:
    languages = routed["by_language"]
    assert len(languages) == 9
    for lang, figs in languages.items():
        want = "all-MiniLM-L6-v2-openvino" if lang == "en" else "multilingual-e5-small"
        assert figs["encoder"] == want, (lang, figs)
        assert "detected_as" not in figs, (lang, figs)  # each routed by its detected language
        assert figs["average_precision"] >= LANGUAGE_AP_FLOOR, (lang, figs)
    # The mission's case: Persian and Arabic coverage of the missiles and the talks is flagged.
    assert languages["fa"]["recall"] == 1.0 and languages["ar"]["recall"] == 1.0


def test_holdout_half_meets_the_issue_floors(items: list[LabelledItem], scored: ItemScores) -> None:
    half = np.array([it.half == "holdout" for it in items])
    labels = np.array([it.label for it in items])[half]
    margin = scored.best_margin[half]
    holdout = figures(margin, margin >= 0, labels)
    assert holdout["average_precision"] >= HOLDOUT_AP_FLOOR, holdout
    assert holdout["f1"] >= HOLDOUT_F1_FLOOR, holdout


def test_monitor_evaluate_routes_by_detected_language_and_reports_each(tmp_path) -> None:
    rows = {r["id"]: r for r in map(json.loads, FIXTURE.read_text(encoding="utf-8").splitlines())}
    picked = [rows["en-01"], rows["en-09"], rows["fa-01"], {**rows["fa-09"], "lang": "ar"}]  # mislabelled
    labels = tmp_path / "mixed.jsonl"
    labels.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "evaluate", "--labels", str(labels),
         "--topics", str(REPO / "topics.yaml")],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    result = json.loads(proc.stdout.splitlines()[-1])
    languages = result["by_language"]
    assert languages["en"]["encoder"] == "all-MiniLM-L6-v2-openvino" and languages["en"]["n"] == 2
    assert languages["fa"]["encoder"] == "multilingual-e5-small"
    # The item labelled Arabic is Persian: it went where ingest would send it, and the report says so.
    assert languages["ar"]["detected_as"] == {"fa": 1}
    assert result["encoder"] == ["all-MiniLM-L6-v2-openvino", "multilingual-e5-small"]
