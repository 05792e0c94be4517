"""What an alert says: its JSON payload and its one-line console summary."""

from __future__ import annotations

from monitor.models import Alert


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
