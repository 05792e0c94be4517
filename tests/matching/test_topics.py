"""Topic profiles: loading the repo's topics.yaml, exemplar files, and config errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from monitor.matching.topics import MIN_PARAGRAPH_CHARS, TopicConfigError, load_topics, read_exemplar_file

REPO = Path(__file__).resolve().parent.parent.parent

LONG_A = (
    "Officials in the capital said on Monday that the new agreement would be signed within weeks, "
    "ending months of uncertainty."
)
LONG_B = (
    "Opposition leaders rejected the plan, saying it offered too little verification and too many "
    "concessions to the other side."
)
LONG_C = "Analysts expect further rounds of talks before the end of the year, possibly in a neutral venue."


def write_topics(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def topic_yaml(**overrides: str | None) -> str:
    """One topic as YAML; pass key=None to drop a key, key='raw yaml' to replace it."""
    fields: dict[str, str | None] = {
        "id": "id: test-topic",
        "name": "name: Test topic",
        "description": "description: Something analysts want.",
        "threshold": "threshold: 0.5",
        "exemplars": "exemplars:\n      - An exemplar sentence about the subject.",
    }
    fields.update(overrides)
    lines = [v for v in fields.values() if v is not None]
    return "  - " + "\n    ".join(lines) + "\n"


def test_repo_topics_yaml() -> None:
    topics = load_topics(REPO / "topics.yaml")
    assert [t.topic_id for t in topics] == ["iran-missiles", "jcpoa-talks"]
    for topic in topics:
        assert 0 < topic.threshold < 1
        assert len(topic.exemplars) >= 5
        assert all(e.strip() == e and e for e in topic.exemplars)
        assert topic.name
        assert topic.description
        assert "\n" not in topic.exemplars[0]
        assert isinstance(topic.negatives, tuple)


def test_minimal_topic_defaults(tmp_path: Path) -> None:
    path = write_topics(
        tmp_path, "topics:\n" + topic_yaml(exemplars="exemplars:\n      - '  spaced\n        out  '")
    )
    (topic,) = load_topics(path)
    assert topic.topic_id == "test-topic"
    assert topic.threshold == 0.5
    assert isinstance(topic.threshold, float)
    assert topic.exemplars == ("spaced out",)
    assert topic.negatives == ()


def test_exemplar_file_split_into_paragraphs(tmp_path: Path) -> None:
    (tmp_path / "exemplars").mkdir()
    article = tmp_path / "exemplars" / "story.txt"
    article.write_text(
        f"Big Headline Here\n\nBy A. Reporter\n\n{LONG_A}\n\n\n{LONG_B[:60]}\n{LONG_B[60:]}\n\n   \n\n{LONG_C}\n\nEnds.\n",
        encoding="utf-8",
    )
    path = write_topics(
        tmp_path,
        "topics:\n" + topic_yaml(exemplars="exemplars: []\n    exemplar_files: [exemplars/story.txt]"),
    )
    (topic,) = load_topics(path)
    assert topic.exemplars == (
        f"Big Headline Here By A. Reporter {LONG_A}",
        " ".join(LONG_B.split()),
        LONG_C,
        "Ends.",
    )


def test_exemplar_files_are_appended_to_inline_exemplars(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(f"{LONG_A}\n\n{LONG_B}\n", encoding="utf-8")
    path = write_topics(tmp_path, "topics:\n" + topic_yaml(exemplar_files="exemplar_files: [a.txt]"))
    (topic,) = load_topics(path)
    assert topic.exemplars == ("An exemplar sentence about the subject.", LONG_A, LONG_B)


def test_read_exemplar_file_merges_short_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("Short.\n\nAlso short.\n\n" + LONG_A + "\n", encoding="utf-8")
    paragraphs = read_exemplar_file(path)
    assert paragraphs == [f"Short. Also short. {LONG_A}"]
    assert all(len(p) >= MIN_PARAGRAPH_CHARS for p in paragraphs)


def test_read_exemplar_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n\n  \n", encoding="utf-8")
    assert read_exemplar_file(path) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopicConfigError, match="not found"):
        load_topics(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("topics: [\n", "not valid YAML"),
        ("", "non-empty top-level 'topics:' list"),
        ("topics: []\n", "non-empty top-level 'topics:' list"),
        ("topics:\n", "non-empty top-level 'topics:' list"),
        ("profiles:\n" + topic_yaml(), "non-empty top-level 'topics:' list"),
        ("topics:\n  - just a string\n", "expected a mapping"),
        ("topics:\n" + topic_yaml(colour="colour: red"), "unknown key(s) ['colour']"),
        ("topics:\n" + topic_yaml(threshold=None), "missing required key 'threshold'"),
        ("topics:\n" + topic_yaml(exemplars=None), "missing required key 'exemplars'"),
        ("topics:\n" + topic_yaml(name=None), "missing required key 'name'"),
        ("topics:\n" + topic_yaml(id="id: Iran Missiles"), "'id' must be"),
        ("topics:\n" + topic_yaml(id="id: -leading-dash"), "'id' must be"),
        ("topics:\n" + topic_yaml(id="id: 42"), "'id' must be"),
        ("topics:\n" + topic_yaml(threshold="threshold: 1.5"), "'threshold' must be a number"),
        ("topics:\n" + topic_yaml(threshold="threshold: -2"), "'threshold' must be a number"),
        ("topics:\n" + topic_yaml(threshold="threshold: high"), "'threshold' must be a number"),
        ("topics:\n" + topic_yaml(threshold="threshold: true"), "'threshold' must be a number"),
        ("topics:\n" + topic_yaml(exemplars="exemplars: []"), "needs at least one exemplar"),
        ("topics:\n" + topic_yaml(exemplars="exemplars: one string"), "'exemplars' must be a list"),
        ("topics:\n" + topic_yaml(exemplars="exemplars: ['ok', '  ']"), "'exemplars' must be a list"),
        ("topics:\n" + topic_yaml(negatives="negatives: [1, 2]"), "'negatives' must be a list"),
        ("topics:\n" + topic_yaml() + topic_yaml(), "duplicate topic id 'test-topic'"),
        ("topics:\n" + topic_yaml(keywords="keywords: Iran"), "'keywords' must be a list, or a mapping"),
        ("topics:\n" + topic_yaml(keywords="keywords: {Persian: [ایران]}"), "'Persian' is not an ISO 639"),
        ("topics:\n" + topic_yaml(keywords="keywords: {fa: ایران}"), "'keywords.fa' must be a list"),
        ("topics:\n" + topic_yaml(thresholds="thresholds: {multilingual-e5-small: 2}"), "between -1 and 1"),
        ("topics:\n" + topic_yaml(thresholds="thresholds: {multilingual-e5-small: yes}"), "between -1 and 1"),
    ],
)
def test_invalid_topic_files(tmp_path: Path, body: str, message: str) -> None:
    path = write_topics(tmp_path, body)
    with pytest.raises(TopicConfigError, match=re.escape(message)) as info:
        load_topics(path)
    assert str(path) in str(info.value)


def test_missing_exemplar_file_names_the_file(tmp_path: Path) -> None:
    path = write_topics(
        tmp_path, "topics:\n" + topic_yaml(exemplar_files="exemplar_files: [exemplars/gone-missing.txt]")
    )
    with pytest.raises(TopicConfigError, match="exemplar file not found") as info:
        load_topics(path)
    message = str(info.value)
    assert "gone-missing.txt" in message
    assert str(tmp_path / "exemplars" / "gone-missing.txt") in message
    assert "test-topic" in message


def test_second_topic_error_names_position(tmp_path: Path) -> None:
    path = write_topics(tmp_path, "topics:\n" + topic_yaml() + topic_yaml(id="id: other", threshold=None))
    with pytest.raises(TopicConfigError, match=r"topic #2"):
        load_topics(path)


def test_thresholds_per_encoder_and_a_clear_error_when_one_is_missing(tmp_path: Path) -> None:
    from monitor.matching.topics import for_encoder, threshold_for

    path = tmp_path / "topics.yaml"
    path.write_text(
        "topics:\n  - id: t\n    name: T\n    description: d\n    threshold: 0.52\n"
        "    thresholds:\n      multilingual-e5-small: 0.86\n    exemplars: [Iran tested a missile.]\n",
        encoding="utf-8",
    )
    (topic,) = load_topics(path)
    assert threshold_for(topic, "all-MiniLM-L6-v2") == 0.52
    assert threshold_for(topic, "multilingual-e5-small") == 0.86
    assert threshold_for(topic, "all-MiniLM-L6-v2-onnx-int8") is None
    # The backends that reproduce PyTorch's vectors share `threshold` unless given their own.
    assert threshold_for(topic, "all-MiniLM-L6-v2-openvino") == 0.52
    assert threshold_for(topic, "all-MiniLM-L6-v2-onnx") == 0.52
    assert [t.threshold for t in for_encoder([topic], "multilingual-e5-small")] == [0.86]
    with pytest.raises(
        TopicConfigError, match=r"no threshold for the encoder all-MiniLM-L6-v2-onnx-int8.*calibrate"
    ):
        for_encoder([topic], "all-MiniLM-L6-v2-onnx-int8")
    assert [t.threshold for t in for_encoder([topic], "all-MiniLM-L6-v2-onnx-int8", strict=False)] == [0.52]


def test_thresholds_must_be_numbers_per_encoder(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(
        "topics:\n  - id: t\n    name: T\n    description: d\n    threshold: 0.5\n    thresholds: [0.4]\n"
        "    exemplars: [x]\n",
        encoding="utf-8",
    )
    with pytest.raises(TopicConfigError, match="'thresholds' must map encoder names to numbers"):
        load_topics(path)


def test_keywords_per_language_load_beside_any_language(tmp_path: Path) -> None:
    keywords = "keywords:\n      any: [IAEA]\n      en: [Iran, Tehran]\n      fa: [ایران, تهران]"
    (topic,) = load_topics(write_topics(tmp_path, "topics:\n" + topic_yaml(keywords=keywords)))
    assert topic.keywords == ("IAEA",)
    assert dict(topic.keywords_by_language) == {"en": ("Iran", "Tehran"), "fa": ("ایران", "تهران")}
