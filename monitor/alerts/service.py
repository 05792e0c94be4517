"""Alerts from the settings: the routing plan, the open channels, and a delivery round under the writer lease."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor import store
from monitor.alerts.channels import Channel, ChannelContext, open_channel
from monitor.alerts.delivery import DeliveryPolicy, DeliveryReport, deliver
from monitor.alerts.routing import ChannelSpec, channels_by_topic
from monitor.config import Settings
from monitor.ingest.guard import AddressGuard
from monitor.models import Topic


def routes(settings: Settings, topics: Sequence[Topic]) -> dict[str, list[ChannelSpec]]:
    """Every topic's channels under these settings."""
    return channels_by_topic(topics, settings.alert_urls, settings.alerts_path, settings.alert_budget)


def policy(settings: Settings) -> DeliveryPolicy:
    """The ledger's retry and give-up limits under these settings."""
    return DeliveryPolicy(
        retry_first_s=settings.alert_retry_first_s,
        retry_max_s=settings.alert_retry_max_s,
        give_up_after_s=settings.alert_give_up_after_s,
    )


def context(settings: Settings, echo: Callable[[str], None] | None = print) -> ChannelContext:
    """What outbound channels obey: the feeds' SSRF guard and timeouts, and the webhook secret."""
    return ChannelContext(
        guard=AddressGuard(settings.fetch_allow),
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        total_timeout_s=settings.total_timeout_s,
        user_agent=settings.user_agent,
        webhook_secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        echo=echo,
    )


def open_channels(
    settings: Settings, plan: dict[str, list[ChannelSpec]], echo: Callable[[str], None] | None = print
) -> dict[str, Channel]:
    """One open channel per distinct channel of the plan."""
    ctx = context(settings, echo)
    specs = {spec.channel_id: spec for specs in plan.values() for spec in specs}
    return {cid: open_channel(spec, ctx, settings.alerts_path) for cid, spec in specs.items()}


def deliver_due(
    settings: Settings,
    topics: Sequence[Topic],
    digests: bool = False,
    topic_id: str | None = None,
    echo: Callable[[str], None] | None = print,
    wait_s: float | None = None,
) -> DeliveryReport:
    """One delivery round (immediate alerts, or the digests), holding the writer lease.

    Args:
        settings: the configuration.
        topics: the topics in force (their channels, modes and budgets).
        digests: send the digests instead of the immediate alerts.
        topic_id: only this topic.
        echo: where the file channel's console lines go.
        wait_s: how long to wait for another writer (default: the lock timeout).

    Raises:
        WriterBusy: another writer held the database longer than that.
    """
    plan = routes(settings, topics)
    channels = open_channels(settings, plan, echo)
    wait = settings.db_lock_timeout_s if wait_s is None else wait_s
    with store.writer_lease(settings.store_target, "alert delivery", wait):
        return deliver(
            lambda: store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s),
            channels,
            plan,
            policy(settings),
            digests=digests,
            topic_id=topic_id,
        )
