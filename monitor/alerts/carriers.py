"""One alert per story and topic, and which copy of the story carries it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from monitor.ingest.urls import stable_id
from monitor.models import AlertCandidate, QueuedAlert

_LAST = datetime.max.replace(tzinfo=UTC)


def alert_id(story_id: str, topic_id: str) -> str:
    """The idempotency key of a story's alert for a topic: the same however many copies match."""
    return stable_id(f"{story_id}:{topic_id}")


def choose_carriers(candidates: Sequence[AlertCandidate]) -> list[QueuedAlert]:
    """Pick, for each story and topic among newly matched articles, the copy that carries the alert.

    The story's own first article speaks for it when it is among the candidates; otherwise
    the earliest published copy does (ties broken by article id), so the choice is
    deterministic whatever order the matches arrive in.

    Args:
        candidates: newly matched (article, topic) pairs with their story and date.

    Returns:
        One alert per (story, topic), in a stable order.
    """
    ranked = sorted(
        candidates,
        key=lambda c: (c.article_id != c.story_id, c.published_at or _LAST, c.article_id),
    )
    chosen: dict[str, QueuedAlert] = {}
    for c in ranked:
        key = alert_id(c.story_id, c.topic_id)
        if key not in chosen:
            chosen[key] = QueuedAlert(key, c.article_id, c.topic_id)
    return list(chosen.values())
