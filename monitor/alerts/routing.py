"""Which channels each topic's alerts go to, in which mode, within which daily budget.

Channels come from three places: ``MONITOR_ALERT_URLS`` (every topic, in the topic's
``alert_mode``), a topic's own ``alerts:`` list in topics.yaml, and the JSON-lines file
sink, which always receives every alert. A channel is identified in the ledger by a hash
of its full URL; only a masked form of the URL is ever stored or printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from monitor.ingest.urls import stable_id
from monitor.models import Topic

FILE_CHANNEL_ID = "file"
# Schemes whose host part is a network host, not a token, so it can be shown.
_HOST_SCHEMES = frozenset(
    {
        "json",
        "jsons",
        "xml",
        "xmls",
        "form",
        "forms",
        "mailto",
        "mailtos",
        "ntfy",
        "ntfys",
        "gotify",
        "gotifys",
    }
)


@dataclass(frozen=True)
class ChannelSpec:
    """One channel a topic's alerts go to."""

    channel_id: str
    name: str  # masked: safe to store and print
    url: str = field(repr=False)  # the full URL, with any credentials
    mode: str = "immediate"  # immediate | digest
    budget: int | None = None  # immediate messages per rolling 24 h; None: unlimited


def mask_url(url: str) -> str:
    """A channel URL with everything that could be a secret hidden, and a short id to tell channels apart.

    ``json://user:pw@hooks.example.org:8080/x/y?token=1`` becomes ``json://hooks.example.org:8080/… [3fa2c1]``;
    ``slack://TOKEN/B/C`` becomes ``slack://… [9b01de]``.
    """
    short = stable_id(url)[:6]
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower() or "?"
        host = parts.hostname if scheme in _HOST_SCHEMES else None
        port = f":{parts.port}" if host and parts.port else ""
    except ValueError:
        return f"? [{short}]"
    return f"{scheme}://{host}{port}/… [{short}]" if host else f"{scheme}://… [{short}]"


def channel_spec(url: str, mode: str, budget: int | None) -> ChannelSpec:
    """The spec of a configured channel URL."""
    return ChannelSpec(stable_id(url.strip()), mask_url(url.strip()), url.strip(), mode, budget)


def file_spec(path: Path) -> ChannelSpec:
    """The JSON-lines file sink (with its console line): every alert, immediately, no budget."""
    return ChannelSpec(FILE_CHANNEL_ID, f"file:{path}", f"file://{path}", "immediate", None)


def channels_by_topic(
    topics: Sequence[Topic], alert_urls: Sequence[str], alerts_file: Path, default_budget: int | None
) -> dict[str, list[ChannelSpec]]:
    """Every topic's channels.

    Args:
        topics: the topics in force.
        alert_urls: channels for every topic (``MONITOR_ALERT_URLS``, or a Prefect Secret's value).
        alerts_file: the JSON-lines sink.
        default_budget: immediate messages a day per topic and channel when a topic sets none.

    Returns:
        ``{topic_id: [ChannelSpec, ...]}``, the file sink first; a URL configured twice for
        one topic counts once (its topic-level entry wins).
    """
    plan: dict[str, list[ChannelSpec]] = {}
    for topic in topics:
        budget = topic.alert_budget if topic.alert_budget is not None else default_budget
        specs = {FILE_CHANNEL_ID: file_spec(alerts_file)}
        for url in alert_urls:
            spec = channel_spec(url, topic.alert_mode, budget)
            specs[spec.channel_id] = spec
        for own in topic.alerts:
            spec = channel_spec(own.url, own.mode, own.budget if own.budget is not None else budget)
            specs[spec.channel_id] = spec
        plan[topic.topic_id] = list(specs.values())
    return plan
