"""Alert delivery. The outbox lives in the database; this module hands alerts to channels.

The first channel is local: one JSON line per alert appended to a file, plus a
console line. Each line carries ``alert_id`` as an idempotency key, so a consumer
can drop the rare duplicate left by a run killed between writing and marking.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.models import Alert


@dataclass(frozen=True)
class Delivery:
    """What happened to a batch of alerts on one channel."""

    channel: str
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def alert_record(alert: Alert) -> dict[str, object]:
    """The JSON payload of one alert."""
    return {
        "alert_id": alert.alert_id,
        "topic_id": alert.topic_id,
        "topic": alert.topic_name,
        "score": round(alert.score, 4),
        "article_id": alert.article_id,
        "title": alert.title,
        "url": alert.url,
        "site_name": alert.site_name,
        "published_at": alert.published_at.isoformat() if alert.published_at else None,
        "passage": alert.passage,
        "story_id": alert.story_id,
        "also_carried_by": list(alert.also_carried_by),
    }


def console_line(alert: Alert) -> str:
    """A one-line human summary of an alert."""
    title = alert.title or alert.url
    outlet = f" ({alert.site_name})" if alert.site_name else ""
    also = f" (also carried by {', '.join(alert.also_carried_by)})" if alert.also_carried_by else ""
    return f"ALERT [{alert.topic_id}] {alert.score:.3f} {title}{outlet} <{alert.url}>{also}"


def deliver_to_file(
    alerts: Sequence[Alert], path: Path, echo: Callable[[str], None] | None = print
) -> Delivery:
    """Append alerts to a JSON-lines file and echo a line for each.

    Args:
        alerts: alerts to deliver.
        path: the JSON-lines file; its directory is created if needed.
        echo: where console lines go (``None`` for silence).

    Returns:
        The ids delivered, or the error for each one that could not be written.
    """
    delivery = Delivery(channel=f"file:{path}")
    if not alerts:
        return delivery
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as sink:
            for alert in alerts:
                sink.write(json.dumps(alert_record(alert), ensure_ascii=False) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
    except OSError as exc:
        return Delivery(delivery.channel, failed={a.alert_id: f"{type(exc).__name__}: {exc}" for a in alerts})
    for alert in alerts:
        delivery.delivered.append(alert.alert_id)
        if echo is not None:
            echo(console_line(alert))
    return delivery
