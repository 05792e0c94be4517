"""The delivery ledger's policy: what goes out now, on which channel, and what happens after a failure.

Every (alert, channel) pair is a row written with the match. A delivery round:

1. releases claims left by a sender that died between sending and recording (their
   messages go out again with the same idempotency key), and gives up on rows older than
   the give-up window;
2. folds immediate rows beyond a topic's daily budget on a channel into the next digest;
3. claims the due rows of every channel that is not backing off, oldest first;
4. sends each channel's messages in its own thread, in order, stopping that channel at its
   first failure, so one failing channel never delays another;
5. records each outcome as soon as its channel is done: sent, or failed with an exponential
   back-off for the channel as a whole, so its backlog goes out oldest first when it returns.

The database is held only for the short claim and record windows, never while sending.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from monitor import store
from monitor.alerts.channels import Channel, SendResult
from monitor.alerts.messages import Message, alert_message, digest_message
from monitor.alerts.routing import ChannelSpec
from monitor.store import deliveries as ledger
from monitor.store.runs import process_alive

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retry, give-up and batch limits of the ledger."""

    retry_first_s: float = 30.0  # a failed channel is tried again after this long, doubling
    retry_max_s: float = 1800.0  # ... up to this
    give_up_after_s: float = 3 * 86400.0  # rows not delivered within this of being queued are given up
    claim_timeout_s: float = 900.0  # a claim this old is stale even if its process lives
    per_channel: int = 200  # messages per channel per round

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the given number of consecutive failures."""
        return float(min(self.retry_first_s * 2 ** max(failures - 1, 0), self.retry_max_s))


@dataclass
class ChannelReport:
    """What one round did on one channel."""

    name: str = ""
    sent: int = 0
    failed: int = 0
    waiting: int = 0  # claimed but not attempted after a failure, or channel backing off
    error: str | None = None


@dataclass
class DeliveryReport:
    """What one delivery round did."""

    channels: dict[str, ChannelReport] = field(default_factory=dict)
    folded: int = 0  # immediate alerts over budget, moved into the next digest
    released: int = 0  # claims of a dead sender, resent
    gave_up: int = 0
    digests: int = 0  # digest messages sent

    @property
    def sent(self) -> int:
        """Messages sent on all channels."""
        return sum(c.sent for c in self.channels.values())


def claimer_id() -> str:
    """``pid@host`` of this process, recorded with every claim."""
    return f"{os.getpid()}@{socket.gethostname()}"


def claimer_alive(claimer: str) -> bool:
    """Whether the process behind a claim still runs (claims from other hosts are trusted until stale)."""
    pid, _, host = claimer.partition("@")
    if host != socket.gethostname():
        return True
    return pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid))


def budgets_of(routes: Mapping[str, Sequence[ChannelSpec]]) -> dict[tuple[str, str], int]:
    """Daily budgets per ``(topic_id, channel_id)`` from the routing plan (unlimited ones left out)."""
    return {
        (topic_id, spec.channel_id): spec.budget
        for topic_id, specs in routes.items()
        for spec in specs
        if spec.budget is not None
    }


def over_budget(
    waiting: Sequence[tuple[str, str, str]],
    used: Mapping[tuple[str, str], int],
    budgets: Mapping[tuple[str, str], int],
) -> list[tuple[str, str]]:
    """The waiting immediate rows that do not fit in their topic's budget on their channel.

    Args:
        waiting: ``(alert_id, channel_id, topic_id)`` oldest (then best) first.
        used: immediate messages already sent in the last 24 h per ``(topic_id, channel_id)``.
        budgets: the budgets.

    Returns:
        ``(alert_id, channel_id)`` keys to fold into the next digest.
    """
    room = {key: budget - used.get(key, 0) for key, budget in budgets.items()}
    folded: list[tuple[str, str]] = []
    for alert_id, channel_id, topic_id in waiting:
        key = (topic_id, channel_id)
        if key not in room:
            continue
        if room[key] > 0:
            room[key] -= 1
        else:
            folded.append((alert_id, channel_id))
    return folded


def deliver(
    connect: Connect,
    channels: Mapping[str, Channel],
    routes: Mapping[str, Sequence[ChannelSpec]],
    policy: DeliveryPolicy | None = None,
    now: Callable[[], datetime] = store.now_utc,
    digests: bool = False,
    topic_id: str | None = None,
) -> DeliveryReport:
    """Run one delivery round: immediate alerts (and retries of failed digests), or the digests.

    Args:
        connect: opens a short-lived read-write connection (the caller holds the writer lease).
        channels: the open channel for each channel id.
        routes: each topic's channels (budgets come from here).
        policy: retry and give-up limits.
        now: the clock.
        digests: send the pending digests (one message per topic and channel) instead of immediate alerts.
        topic_id: only this topic.

    Returns:
        What was sent, folded, released and given up, per channel.
    """
    policy = policy or DeliveryPolicy()
    report = DeliveryReport()
    start = now()
    with connect() as con, store.transaction(con):
        report.released = ledger.release_stale_claims(
            con, start, claimer_alive, timedelta(seconds=policy.claim_timeout_s)
        )
        report.gave_up = ledger.give_up_old(con, start, timedelta(seconds=policy.give_up_after_s))
        folded = over_budget(
            ledger.immediate_waiting(con),
            ledger.immediate_used(con, start - timedelta(days=1)),
            budgets_of(routes),
        )
        ledger.fold_into_digest(con, folded, "over the daily budget: folded into the next digest", start)
        report.folded = len(folded)
        blocked = ledger.blocked_channels(con, start)
        waiting = ledger.waiting_counts(con)
        skip = sorted(set(blocked) | (set(waiting) - set(channels)))
        claimer = claimer_id()
        claimed = ledger.claim_due(
            con, start, claimer, skip, "digest" if digests else "immediate", policy.per_channel, topic_id
        )
        if not digests:  # a digest that failed is retried with the immediate round, as the same message
            claimed += [
                c for c in ledger.claim_due(con, start, claimer, skip, "digest", policy.per_channel, topic_id)
                if c.digest_id
            ]  # fmt: skip
        batches = _messages(con, claimed, start)
    for channel_id in blocked:
        if channel_id in channels:
            report.channels.setdefault(
                channel_id,
                ChannelReport(
                    channels[channel_id].name, error=f"backing off until {blocked[channel_id]:%H:%M:%S}"
                ),
            )
    if not batches:
        return report
    with ThreadPoolExecutor(max_workers=len(batches), thread_name_prefix="deliver") as pool:
        futures = {pool.submit(_send_in_order, channels[cid], msgs): cid for cid, msgs in batches.items()}
        for future in as_completed(futures):
            channel_id = futures[future]
            outcomes = future.result()
            _record(
                connect,
                channel_id,
                channels[channel_id].name,
                batches[channel_id],
                outcomes,
                policy,
                now(),
                report,
            )
    return report


def _messages(
    con: duckdb.DuckDBPyConnection, claimed: Sequence[ledger.Claimed], now: datetime
) -> dict[str, list[tuple[Message, list[tuple[str, str]]]]]:
    """Turn claimed rows into messages per channel, each with the ledger keys it settles."""
    alerts = ledger.alerts_by_id(con, [c.alert_id for c in claimed])
    out: dict[str, list[tuple[Message, list[tuple[str, str]]]]] = defaultdict(list)
    groups: dict[tuple[str, str, str | None], list[ledger.Claimed]] = defaultdict(list)
    for c in claimed:
        if c.mode == "immediate":
            out[c.channel_id].append((alert_message(alerts[c.alert_id]), [(c.alert_id, c.channel_id)]))
        else:
            groups[(c.channel_id, c.topic_id, c.digest_id)].append(c)
    for (channel_id, topic_id, existing), members in groups.items():
        if existing is None:  # a new digest: its membership is fixed now, so a retry is the same message
            member_alerts = [alerts[c.alert_id] for c in members]
            message = digest_message(member_alerts[0].topic_name, topic_id, channel_id, member_alerts)
            ledger.assign_digest(con, message.key, topic_id, channel_id, [c.alert_id for c in members], now)
        else:
            member_alerts = [alerts[c.alert_id] for c in members]
            message = digest_message(member_alerts[0].topic_name, topic_id, channel_id, member_alerts)
            message = Message(existing, message.title, message.text, message.markdown,
                              {**message.payload, "digest_id": existing}, message.alert_ids, message.console)  # fmt: skip
        out[channel_id].append((message, [(c.alert_id, c.channel_id) for c in members]))
    return dict(out)


def _send_in_order(
    channel: Channel, messages: Sequence[tuple[Message, list[tuple[str, str]]]]
) -> list[SendResult]:
    """Send a channel's messages oldest first; stop at the first failure (the rest wait for the channel)."""
    results: list[SendResult] = []
    for message, _keys in messages:
        result = channel.send(message)
        results.append(result)
        if not result.ok:
            break
    return results


def _record(
    connect: Connect,
    channel_id: str,
    name: str,
    messages: Sequence[tuple[Message, list[tuple[str, str]]]],
    outcomes: Sequence[SendResult],
    policy: DeliveryPolicy,
    now: datetime,
    report: DeliveryReport,
) -> None:
    channel_report = report.channels.setdefault(channel_id, ChannelReport(name))
    sent = [key for (_, keys), r in zip(messages, outcomes, strict=False) if r.ok for key in keys]
    failed_at = next((i for i, r in enumerate(outcomes) if not r.ok), None)
    with connect() as con, store.transaction(con):
        ledger.record_sent(con, sent, now)
        channel_report.sent += sum(1 for r in outcomes if r.ok)
        report.digests += sum(
            1
            for (m, _), r in zip(messages, outcomes, strict=False)
            if r.ok and m.payload.get("type") == "digest"
        )
        if failed_at is None:
            ledger.channel_ok(con, channel_id, name, now)
            return
        error = outcomes[failed_at].error or "failed"
        retry_at = ledger.channel_failed(con, channel_id, name, error, policy.backoff, now)
        ledger.record_failed(con, messages[failed_at][1], error, retry_at)
        waiting = [key for _, keys in messages[failed_at + 1 :] for key in keys]
        ledger.release(con, waiting, retry_at)
    channel_report.failed += 1
    channel_report.waiting += len(messages) - failed_at - 1
    channel_report.error = error
