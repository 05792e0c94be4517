"""The user's feed list: feeds.yaml, validated entry by entry.

A broken file (missing, not YAML, no ``feeds:`` list) stops the run: nothing in it can be
trusted. A broken *entry* (an unsupported scheme, a malformed URL, a duplicate, a wrong
type) is rejected on its own and recorded with its reason, and every other feed runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.ingest.urls import InvalidURL, canonicalize
from monitor.models import Feed, RejectedFeed

FEED_KEYS = frozenset({"name", "url", "language", "tags"})


class FeedListError(ValueError):
    """Raised when feeds.yaml is missing, is not YAML, or has no top-level ``feeds:`` list."""


@dataclass(frozen=True)
class FeedList:
    """The feeds to poll, and the entries that were rejected (with their reasons)."""

    feeds: tuple[Feed, ...]
    rejected: tuple[RejectedFeed, ...] = ()


def load_feeds(path: Path) -> FeedList:
    """Load and validate the feed list.

    Args:
        path: a YAML file with a top-level ``feeds:`` list of ``{name, url}``
            mappings, each optionally with ``language`` and ``tags``.

    Returns:
        The valid feeds in file order, and each rejected entry with its error.

    Raises:
        FeedListError: the file is missing, is not valid YAML, or has no ``feeds:`` list.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FeedListError(f"feed list not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise FeedListError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("feeds"), list):
        raise FeedListError(f"{path}: expected a top-level 'feeds:' list")
    feeds: list[Feed] = []
    rejected: list[RejectedFeed] = []
    first_position: dict[str, int] = {}
    for position, item in enumerate(raw["feeds"], start=1):
        name = _entry_name(item, position)
        url = item.get("url") if isinstance(item, Mapping) else None
        url_text = url.strip() if isinstance(url, str) else ""
        try:
            feed = _parse_entry(item, name)
            key = canonicalize(feed.url)
            if key in first_position:
                raise ValueError(f"duplicate of feed #{first_position[key]} ({key})")
        except (ValueError, InvalidURL) as exc:
            rejected.append(RejectedFeed(position, name, url_text, f"feed #{position} ({name}): {exc}"))
            continue
        first_position[key] = position
        feeds.append(feed)
    return FeedList(tuple(feeds), tuple(rejected))


def _entry_name(item: Any, position: int) -> str:
    name = item.get("name") if isinstance(item, Mapping) else None
    return name.strip() if isinstance(name, str) and name.strip() else f"feed #{position}"


def _parse_entry(item: Any, name: str) -> Feed:
    """One entry as a :class:`Feed`; raises ValueError (or InvalidURL) naming what is wrong."""
    if not isinstance(item, Mapping):
        raise ValueError("expected a mapping with name and url")
    unknown = set(item) - FEED_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(FEED_KEYS)}")
    raw_name, url = item.get("name"), item.get("url")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ValueError("'name' must be a non-empty string")
    if not isinstance(url, str):
        raise ValueError("'url' must be a string")
    canonicalize(url)  # raises InvalidURL for other schemes and malformed URLs
    tags = item.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("'tags' must be a list of strings")
    language = item.get("language")
    if language is not None and not isinstance(language, str):
        raise ValueError("'language' must be a string")
    return Feed(name=name, url=url.strip(), language=language, tags=tuple(tags))
