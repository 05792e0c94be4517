"""Topic profiles: what analysts track, loaded and validated from topics.yaml."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from monitor.models import Topic, TopicChannel

TOPIC_KEYS = frozenset(
    {
        "id", "name", "description", "exemplars", "exemplar_files", "negatives", "threshold",
        "keywords", "keyword_penalty", "language", "thresholds", "alert_mode", "alert_budget", "alerts",
    }
)  # fmt: skip
CHANNEL_KEYS = frozenset({"url", "mode", "budget"})
ALERT_MODES = ("immediate", "digest")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MIN_PARAGRAPH_CHARS = 80


class TopicConfigError(ValueError):
    """Raised when topics.yaml is missing, malformed, or names a missing file."""


def load_topics(path: Path) -> list[Topic]:
    """Load and validate topic profiles.

    Args:
        path: a YAML file with a top-level ``topics:`` list. Each topic has
            ``id``, ``name``, ``description``, ``threshold`` and ``exemplars``,
            and optionally ``exemplar_files`` (paths relative to the YAML file,
            split into paragraphs), ``negatives``, ``keywords``, ``keyword_penalty``
            and ``language``.

    Returns:
        The topics in file order.

    Raises:
        TopicConfigError: the file or an exemplar file is missing, or a key is
            unknown, missing or of the wrong type.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TopicConfigError(f"topics file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise TopicConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("topics"), list) or not raw["topics"]:
        raise TopicConfigError(f"{path}: expected a non-empty top-level 'topics:' list")
    topics: list[Topic] = []
    ids: set[str] = set()
    for i, item in enumerate(raw["topics"], start=1):
        topic = _parse_topic(item, f"{path}: topic #{i}", path.parent)
        if topic.topic_id in ids:
            raise TopicConfigError(f"{path}: duplicate topic id {topic.topic_id!r}")
        ids.add(topic.topic_id)
        topics.append(topic)
    return topics


def _parse_topic(item: Any, where: str, base: Path) -> Topic:
    if not isinstance(item, Mapping):
        raise TopicConfigError(f"{where}: expected a mapping")
    unknown = set(item) - TOPIC_KEYS
    if unknown:
        raise TopicConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(TOPIC_KEYS)}")
    for key in ("id", "name", "description", "threshold", "exemplars"):
        if key not in item:
            raise TopicConfigError(f"{where}: missing required key {key!r}")
    topic_id = item["id"]
    if not isinstance(topic_id, str) or not _ID_RE.match(topic_id):
        raise TopicConfigError(f"{where}: 'id' must be lower-case letters, digits, '-' or '_'")
    where = f"{where} ({topic_id})"
    threshold = item["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not -1 <= threshold <= 1:
        raise TopicConfigError(f"{where}: 'threshold' must be a number between -1 and 1")
    exemplars = _strings(item["exemplars"], "exemplars", where)
    for name in _strings(item.get("exemplar_files", []), "exemplar_files", where):
        exemplars.extend(read_exemplar_file(base / name, where))
    if not exemplars:
        raise TopicConfigError(f"{where}: needs at least one exemplar")
    penalty = item.get("keyword_penalty", 0.15)
    if isinstance(penalty, bool) or not isinstance(penalty, int | float) or not 0 <= penalty <= 2:
        raise TopicConfigError(f"{where}: 'keyword_penalty' must be a number between 0 and 2")
    keywords_any, keywords_by_language = _keywords(item.get("keywords", []), where)
    language = item.get("language")
    if language is not None and (not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}", language)):
        raise TopicConfigError(f"{where}: 'language' must be an ISO 639 code such as 'en'")
    return Topic(
        topic_id=topic_id,
        name=str(item["name"]),
        description=str(item["description"]).strip(),
        exemplars=tuple(exemplars),
        negatives=tuple(_strings(item.get("negatives", []), "negatives", where)),
        threshold=float(threshold),
        keywords=tuple(keywords_any),
        keywords_by_language=keywords_by_language,
        keyword_penalty=float(penalty),
        language=language,
        thresholds=_thresholds(item.get("thresholds", {}), where),
        alert_mode=_mode(item.get("alert_mode", "immediate"), where),
        alert_budget=_budget(item.get("alert_budget"), where),
        alerts=tuple(_channels(item.get("alerts", []), where)),
    )


def _keywords(value: Any, where: str) -> tuple[list[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """``keywords``: a list (every language), or ``{language: [...], any: [...]}``."""
    if isinstance(value, list):
        return _strings(value, "keywords", where), ()
    if not isinstance(value, Mapping):
        raise TopicConfigError(f"{where}: 'keywords' must be a list, or a mapping of language codes to lists")
    any_language: list[str] = []
    per_language: list[tuple[str, tuple[str, ...]]] = []
    for lang, words in value.items():
        if lang == "any":
            any_language = _strings(words, "keywords.any", where)
        elif isinstance(lang, str) and re.fullmatch(r"[a-z]{2,3}", lang):
            per_language.append((lang, tuple(_strings(words, f"keywords.{lang}", where))))
        else:
            raise TopicConfigError(f"{where}: keywords: {lang!r} is not an ISO 639 language code (or 'any')")
    return any_language, tuple(sorted(per_language))


def _thresholds(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    """``thresholds: {encoder name: number}``: the thresholds fitted for encoders other than the default."""
    if not isinstance(value, Mapping):
        raise TopicConfigError(f"{where}: 'thresholds' must map encoder names to numbers")
    out: list[tuple[str, float]] = []
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not -1 <= number <= 1:
            raise TopicConfigError(f"{where}: thresholds.{name} must be a number between -1 and 1")
        out.append((str(name), float(number)))
    return tuple(sorted(out))


def threshold_for(topic: Topic, encoder: str) -> float | None:
    """A topic's threshold for an encoder: its ``thresholds`` entry, else ``threshold`` for the
    default model's backends (PyTorch, ONNX fp32, OpenVINO: the same vectors), else None."""
    from monitor.matching.embedding.encoder import DEFAULT_ENCODER_BACKENDS

    given = dict(topic.thresholds)
    if encoder in given:
        return given[encoder]
    return topic.threshold if encoder in DEFAULT_ENCODER_BACKENDS else None


def for_encoder(topics: Sequence[Topic], encoder: str, strict: bool = True) -> list[Topic]:
    """The topics with the thresholds fitted for an encoder in force.

    Args:
        topics: the topics.
        encoder: the encoder's name.
        strict: refuse a topic with no threshold for this encoder (else keep its default threshold).

    Raises:
        TopicConfigError: ``strict`` and a topic has no threshold for the encoder.
    """
    out: list[Topic] = []
    for topic in topics:
        value = threshold_for(topic, encoder)
        if value is None and strict:
            raise TopicConfigError(
                f"topic {topic.topic_id!r} has no threshold for the encoder {encoder}: its threshold was fitted for "
                f"another encoder. Fit one with `monitor calibrate --labels FILE --write` (MONITOR_EMBEDDER={encoder}), "
                f"or add `thresholds: {{{encoder}: 0.5}}` to the topic"
            )
        out.append(replace(topic, threshold=value if value is not None else topic.threshold))
    return out


def _mode(value: Any, where: str) -> str:
    if value not in ALERT_MODES:
        raise TopicConfigError(f"{where}: alert mode must be one of {list(ALERT_MODES)}, got {value!r}")
    return str(value)


def _budget(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TopicConfigError(
            f"{where}: an alert budget must be a whole number of alerts a day, got {value!r}"
        )
    return value


def _channels(value: Any, where: str) -> list[TopicChannel]:
    """``alerts:`` entries: a URL, or ``{url, mode, budget}``."""
    if not isinstance(value, list):
        raise TopicConfigError(f"{where}: 'alerts' must be a list of channel URLs or {{url, mode, budget}}")
    channels: list[TopicChannel] = []
    for i, entry in enumerate(value, start=1):
        at = f"{where}: alerts #{i}"
        if isinstance(entry, str):
            entry = {"url": entry}
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("url"), str)
            or "://" not in entry["url"]
        ):
            raise TopicConfigError(f"{at}: needs a channel URL such as json://host/path or mailto://...")
        unknown = set(entry) - CHANNEL_KEYS
        if unknown:
            raise TopicConfigError(f"{at}: unknown key(s) {sorted(unknown)}; allowed: {sorted(CHANNEL_KEYS)}")
        channels.append(
            TopicChannel(
                entry["url"].strip(),
                _mode(entry.get("mode", "immediate"), at),
                _budget(entry.get("budget"), at),
            )
        )
    return channels


def _strings(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TopicConfigError(f"{where}: {key!r} must be a list of non-empty strings")
    return [" ".join(v.split()) for v in value]


def read_exemplar_file(path: Path, where: str = "") -> list[str]:
    """Read an exemplar article and split it into paragraph exemplars.

    Args:
        path: a plain-text file; paragraphs are separated by blank lines.
        where: context for the error message.

    Returns:
        Paragraphs long enough to carry meaning (short lines such as headlines are
        merged into the next paragraph).

    Raises:
        TopicConfigError: the file does not exist.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TopicConfigError(f"{where}: exemplar file not found: {path}") from exc
    paragraphs: list[str] = []
    pending = ""
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if not block:
            continue
        pending = f"{pending} {block}".strip()
        if len(pending) >= MIN_PARAGRAPH_CHARS:
            paragraphs.append(pending)
            pending = ""
    if pending:
        paragraphs.append(pending)
    return paragraphs
