"""What an alert says: one message per story, or one digest per topic, as text, Markdown and JSON."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor.ingest.urls import stable_id
from monitor.matching.keywords import keyword_pattern
from monitor.models import Alert

PASSAGE_CHARS = 600
NOT_TRANSLATED = "not translated: the monitor has no machine translation"


@dataclass(frozen=True)
class Message:
    """One message to send: its idempotency key, and the same content in three forms."""

    key: str  # the alert id, or the digest id
    title: str
    text: str
    markdown: str
    payload: dict[str, object] = field(repr=False)
    alert_ids: tuple[str, ...] = ()
    console: str = ""  # one line for the terminal


def alert_record(alert: Alert) -> dict[str, object]:
    """The JSON fields of one alert (the JSON-lines sink writes exactly this)."""
    return {
        "alert_id": alert.alert_id,
        "topic_id": alert.topic_id,
        "topic": alert.topic_name,
        "score": round(alert.score, 4),
        "threshold": alert.threshold,
        "article_id": alert.article_id,
        "title": alert.title,
        "url": alert.url,
        "site_name": alert.site_name,
        "outlet": alert.source_name or None,
        "published_at": alert.published_at.isoformat() if alert.published_at else None,
        "language": alert.language,
        "passage": alert.passage,
        "keywords": sorted(alert.keyword_hits),
        "story_id": alert.story_id,
        "also_carried_by": list(alert.also_carried_by),
    }


def console_line(alert: Alert) -> str:
    """A one-line human summary of an alert."""
    title = alert.title or alert.url
    outlet = f" ({alert.source_name})" if alert.source_name else ""
    also = f" (also carried by {', '.join(alert.also_carried_by)})" if alert.also_carried_by else ""
    return f"ALERT [{alert.topic_id}] {alert.score:.3f} {title}{outlet} <{alert.url}>{also}"


def highlight(passage: str, keywords: Sequence[str], before: str, after: str) -> str:
    """The passage with each keyword occurrence wrapped in ``before``/``after`` (whole words, any case)."""
    if not keywords:
        return passage
    return keyword_pattern(keywords).sub(lambda m: f"{before}{m.group(0)}{after}", passage)


def _excerpt(passage: str) -> str:
    return passage if len(passage) <= PASSAGE_CHARS else passage[: PASSAGE_CHARS - 1].rsplit(" ", 1)[0] + " …"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "date unknown"


def _language_note(alert: Alert) -> str | None:
    if alert.language and alert.language != "en":
        return f"Language: {alert.language} ({NOT_TRANSLATED})"
    return None


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def alert_message(alert: Alert) -> Message:
    """The message for one story's alert: topic, score, headline, outlet, time, link, passage, also carried by."""
    title = f"[{alert.topic_name}] {alert.title or alert.url}"
    keywords = sorted(alert.keyword_hits)
    excerpt = _excerpt(alert.passage)
    threshold = f" (threshold {alert.threshold:.3f})" if alert.threshold is not None else ""
    meta = f"{alert.source_name or 'unknown outlet'} · published {_when(alert.published_at)} · score {alert.score:.3f}{threshold}"
    also = f"Also carried by: {', '.join(alert.also_carried_by)}" if alert.also_carried_by else None
    note = _language_note(alert)
    text_lines = [title, meta, alert.url, "", highlight(excerpt, keywords, "*", "*")]
    md_lines = [
        f"**{_md(alert.topic_name)}**: [{_md(alert.title or alert.url)}]({alert.url})",
        _md(meta),
        "",
        "> " + highlight(_md(excerpt), [_md(k) for k in keywords], "**", "**"),
    ]
    for extra in (note, also):
        if extra:
            text_lines.append(extra)
            md_lines.append(_md(extra))
    text = "\n".join(text_lines)
    markdown = "\n".join(md_lines)
    payload: dict[str, object] = {"type": "alert", **alert_record(alert), "text": text}
    return Message(alert.alert_id, title, text, markdown, payload, (alert.alert_id,), console_line(alert))


def digest_id(topic_id: str, channel_id: str, alert_ids: Sequence[str]) -> str:
    """The idempotency key of a digest: fixed by its topic, channel and member alerts."""
    return stable_id(f"digest:{topic_id}:{channel_id}:{','.join(sorted(alert_ids))}")


def digest_message(topic_name: str, topic_id: str, channel_id: str, alerts: Sequence[Alert]) -> Message:
    """One message for several stories of a topic, ranked by score, each once, with who carried it."""
    ranked = sorted(alerts, key=lambda a: (-a.score, a.alert_id))
    key = digest_id(topic_id, channel_id, [a.alert_id for a in ranked])
    title = f"[{topic_name}] digest: {len(ranked)} {'story' if len(ranked) == 1 else 'stories'}"
    text_lines, md_lines = [title, ""], [f"**{_md(topic_name)}**: {len(ranked)} stories, best first", ""]
    for rank, a in enumerate(ranked, start=1):
        outlets = ", ".join([a.source_name, *a.also_carried_by] if a.source_name else a.also_carried_by)
        lang = f" [{a.language}, {NOT_TRANSLATED}]" if a.language and a.language != "en" else ""
        text_lines.append(
            f"{rank}. {a.score:.3f} {a.title or a.url} ({outlets or 'unknown outlet'}){lang} {a.url}"
        )
        md_lines.append(
            f"{rank}. {a.score:.3f} [{_md(a.title or a.url)}]({a.url}) ({_md(outlets or 'unknown outlet')}){_md(lang)}"
        )
    payload: dict[str, object] = {
        "type": "digest",
        "digest_id": key,
        "topic_id": topic_id,
        "topic": topic_name,
        "stories": [alert_record(a) for a in ranked],
        "text": "\n".join(text_lines),
    }
    console = f"DIGEST [{topic_id}] {len(ranked)} stories, best: {ranked[0].title if ranked else ''}"
    return Message(
        key,
        title,
        "\n".join(text_lines),
        "\n".join(md_lines),
        payload,
        tuple(a.alert_id for a in ranked),
        console,
    )


def run_summary_markdown(
    run_id: str,
    counts: dict[str, int],
    matches: Sequence[tuple[str, str, float, str | None, str, str | None]],
) -> str:
    """A run's new matches per topic, with links, as Markdown (the flow publishes it as an artifact)."""
    lines = [
        f"# Ingest run {run_id}",
        "",
        f"{counts.get('feeds_total', 0)} feeds polled ({counts.get('feeds_failed', 0)} failed), "
        f"{counts.get('articles_stored', 0)} new articles, {counts.get('matches_new', 0)} new matches, "
        f"{counts.get('alerts_delivered', 0)} alert messages sent.",
    ]
    if not matches:
        lines += ["", "No new coverage of the topics in this run."]
    current = None
    for topic_id, topic_name, score, title, url, outlet in matches:
        if topic_id != current:
            current = topic_id
            lines += [
                "",
                f"## {_md(topic_name)} (`{topic_id}`)",
                "",
                "| score | article | outlet |",
                "|---|---|---|",
            ]
        lines.append(f"| {score:.3f} | [{_md(title or url)}]({url}) | {_md(outlet or '')} |")
    return "\n".join(lines) + "\n"
