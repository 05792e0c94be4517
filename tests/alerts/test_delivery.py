"""The delivery ledger against real receivers on 127.0.0.1: outages, budgets, digests, email."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from monitor import store
from monitor.alerts.delivery import DeliveryPolicy, deliver, over_budget
from monitor.alerts.routing import ChannelSpec, channel_spec
from tests.alerts.conftest import Clock, queue
from tests.alerts.receivers import WebhookReceiver
from tests.rows import TOPIC

POLICY = DeliveryPolicy(retry_first_s=30, retry_max_s=600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ledger(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT alert_id, channel_id, mode, status, attempts, last_error FROM deliveries ORDER BY created_at, alert_id"
        ).fetchall()


def run_round(db: Path, channels: dict, specs: list[ChannelSpec], clock: Clock, **kw: object):
    return deliver(lambda: store.connect(db), channels, {TOPIC.topic_id: specs}, POLICY, now=clock, **kw)  # type: ignore[arg-type]


def test_a_receiver_down_for_two_attempts_gets_every_alert_exactly_once_when_it_returns(
    tmp_path: Path, clock: Clock, sink: ChannelSpec, open_channels: Callable
) -> None:
    db, port = tmp_path / "m.duckdb", free_port()
    hook = channel_spec(f"json://127.0.0.1:{port}/hook", "immediate", None)
    specs = [sink, hook]
    alerts = queue(db, range(1, 6), specs)
    channels = open_channels(specs)

    first = run_round(db, channels, specs, clock)  # the receiver is not listening
    assert first.channels["file"].sent == 5
    assert (
        first.channels[hook.channel_id].sent == 0 and "ConnectError" in first.channels[hook.channel_id].error
    )
    clock.advance(10)
    assert run_round(db, channels, specs, clock).channels[hook.channel_id].sent == 0  # backing off: not tried
    clock.advance(25)
    second = run_round(db, channels, specs, clock)  # tried again, still down: the back-off doubles
    assert second.channels[hook.channel_id].failed == 1
    with WebhookReceiver(port=port) as receiver:
        clock.advance(30)
        assert run_round(db, channels, specs, clock).channels[hook.channel_id].sent == 0  # within the 60 s
        clock.advance(31)
        back = run_round(db, channels, specs, clock)
        again = run_round(db, channels, specs, clock)
    assert back.channels[hook.channel_id].sent == 5
    assert again.sent == 0
    assert receiver.keys() == alerts  # each alert once, oldest first
    rows = {(a, c): (status, attempts) for a, c, _, status, attempts, _ in ledger(db)}
    assert rows[(alerts[0], hook.channel_id)] == ("sent", 3)  # two failed attempts, then delivered
    assert all(rows[(a, hook.channel_id)] == ("sent", 1) for a in alerts[1:])  # waited with the channel
    assert all(rows[(a, "file")] == ("sent", 1) for a in alerts)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT consecutive_failures, next_attempt_at FROM channel_state WHERE channel_id = ?",
                           [hook.channel_id]).fetchone() == (0, None)  # fmt: skip


def test_a_hanging_channel_does_not_delay_the_others(
    tmp_path: Path, clock: Clock, sink: ChannelSpec, open_channels: Callable
) -> None:
    db = tmp_path / "m.duckdb"
    with WebhookReceiver() as healthy, WebhookReceiver(hang_s=8) as stuck:
        good = channel_spec(f"json://127.0.0.1:{healthy.port}/in", "immediate", None)
        bad = channel_spec(f"json://127.0.0.1:{stuck.port}/in", "immediate", None)
        specs = [sink, good, bad]
        alerts = queue(db, range(1, 6), specs)
        started = time.monotonic()
        report = run_round(db, open_channels(specs, timeout_s=2.0), specs, clock)
        elapsed = time.monotonic() - started
        assert healthy.keys() == alerts
        healthy_done = max(r.received_at for r in healthy.requests) - started
    assert report.channels[good.channel_id].sent == 5
    assert (
        report.channels[bad.channel_id].failed == 1 and "timed out" in report.channels[bad.channel_id].error
    )
    assert (
        healthy_done < 1.5 <= elapsed
    )  # the healthy channel finished while the stuck one was still timing out
    statuses = {(a, c): s for a, c, _, s, _, _ in ledger(db)}
    assert {statuses[(a, bad.channel_id)] for a in alerts} == {"failed", "pending"}


def test_thirty_stories_against_a_budget_of_ten_give_ten_alerts_and_one_digest(
    tmp_path: Path, clock: Clock, sink: ChannelSpec, open_channels: Callable
) -> None:
    db = tmp_path / "m.duckdb"
    with WebhookReceiver() as receiver:
        hook = channel_spec(f"json://127.0.0.1:{receiver.port}/in", "immediate", 10)
        specs = [sink, hook]
        alerts = queue(db, range(1, 31), specs)
        channels = open_channels(specs)
        immediate = run_round(db, channels, specs, clock)
        assert immediate.folded == 20 and immediate.channels[hook.channel_id].sent == 10
        assert immediate.channels["file"].sent == 30  # the local record has no budget
        assert run_round(db, channels, specs, clock).sent == 0  # the budget is spent for 24 h
        digest = run_round(db, channels, specs, clock, digests=True)
        assert digest.digests == 1 and run_round(db, channels, specs, clock, digests=True).sent == 0
        bodies = [json.loads(r.body) for r in receiver.requests]
    singles = [b for b in bodies if b["type"] == "alert"]
    (combined,) = [b for b in bodies if b["type"] == "digest"]
    assert len(singles) == 10 and len(combined["stories"]) == 20
    carried = [b["alert_id"] for b in singles] + [s["alert_id"] for s in combined["stories"]]
    assert sorted(carried) == sorted(alerts)  # every story once
    scores = [s["score"] for s in combined["stories"]]
    assert scores == sorted(scores, reverse=True)  # ranked by score
    assert receiver.requests[-1].headers["Idempotency-Key"] == combined["digest_id"]
    with duckdb.connect(str(db), read_only=True) as con:
        folded = con.execute(
            "SELECT count(*), any_value(note), count(DISTINCT digest_id) FROM deliveries WHERE channel_id = ? AND mode = 'digest'",
            [hook.channel_id],
        ).fetchone()
    assert folded == (20, "over the daily budget: folded into the next digest", 1)


def test_the_budget_rule_keeps_the_oldest_and_folds_the_rest() -> None:
    waiting = [(f"a{i}", "c", "t") for i in range(5)] + [("b0", "other", "t")]
    assert over_budget(waiting, {("t", "c"): 1}, {("t", "c"): 3}) == [("a2", "c"), ("a3", "c"), ("a4", "c")]
    assert over_budget(waiting, {}, {}) == []


def test_a_digest_channel_waits_for_the_digest_round(
    tmp_path: Path, clock: Clock, sink: ChannelSpec, open_channels: Callable
) -> None:
    db = tmp_path / "m.duckdb"
    with WebhookReceiver() as receiver:
        daily = channel_spec(f"json://127.0.0.1:{receiver.port}/daily", "digest", None)
        specs = [sink, daily]
        queue(db, range(1, 4), specs)
        channels = open_channels(specs)
        assert run_round(db, channels, specs, clock).channels.get(daily.channel_id) is None
        assert receiver.requests == []
        assert run_round(db, channels, specs, clock, digests=True).digests == 1
    (body,) = [json.loads(r.body) for r in receiver.requests]
    assert body["type"] == "digest" and len(body["stories"]) == 3


def test_an_email_alert_reaches_a_local_smtp_server(
    tmp_path: Path, clock: Clock, sink: ChannelSpec, open_channels: Callable
) -> None:
    from aiosmtpd.controller import Controller

    received: list[str] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd
            received.append(envelope.content.decode("utf-8", "replace"))  # type: ignore[attr-defined]
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = channel_spec(
            f"mailto://127.0.0.1:{port}?from=monitor@example.org&to=analyst@example.org", "immediate", None
        )
        specs = [sink, mail]
        db = tmp_path / "m.duckdb"
        queue(db, [1], specs)
        report = run_round(db, open_channels(specs), specs, clock)
    finally:
        controller.stop()
    assert report.channels[mail.channel_id].sent == 1, report
    (email,) = received
    assert "Subject: [Topic one] Title 1" in email
    assert "http://127.0.0.1:9/a/1.html" in email
    assert "To: analyst@example.org" in email
