"""Channels: the JSON-lines file, webhooks (idempotency key, signature, SSRF guard) and Apprise URLs."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.alerts.channels import (
    SIGNATURE_HEADER,
    AppriseChannel,
    ChannelContext,
    FileChannel,
    WebhookChannel,
    open_channel,
    sign,
    webhook_target,
)
from monitor.alerts.messages import alert_message
from monitor.alerts.routing import channel_spec
from monitor.ingest.guard import AddressGuard
from monitor.models import Alert
from tests.alerts.receivers import WebhookReceiver


def make_alert(n: int, **overrides: object) -> Alert:
    fields: dict[str, object] = {
        "alert_id": f"alert-{n:04d}",
        "article_id": f"{n:016x}",
        "topic_id": "iran-missiles",
        "topic_name": "Iran's ballistic-missile programme",
        "score": 0.612345678,
        "title": f"Story number {n} \u2014 caf\u00e9",
        "url": f"https://news.example.com/story/{n}",
        "site_name": "Example News",
        "published_at": datetime(2026, 11, 21, 7, 30, tzinfo=UTC),
        "passage": f"Passage {n}: the Guards unveiled a missile in Iran.\nSecond line.",
        "keyword_hits": {"iran": 1},
    }
    fields.update(overrides)
    return Alert(**fields)  # type: ignore[arg-type]


def context(**overrides: object) -> ChannelContext:
    fields: dict[str, object] = {"guard": AddressGuard(["127.0.0.1"]), "total_timeout_s": 5.0, "echo": None}
    fields.update(overrides)
    return ChannelContext(**fields)  # type: ignore[arg-type]


def test_file_channel_writes_one_json_line_per_alert_and_echoes(tmp_path: Path) -> None:
    path = tmp_path / "out" / "nested" / "alerts.jsonl"
    lines: list[str] = []
    channel = FileChannel(path, echo=lines.append)
    assert channel.send(alert_message(make_alert(1))).ok and channel.send(alert_message(make_alert(2))).ok
    raw = path.read_text(encoding="utf-8")
    assert raw.count("\n") == 2 and "caf\u00e9" in raw  # UTF-8, not \u escapes
    records = [json.loads(line) for line in raw.splitlines()]
    assert [r["alert_id"] for r in records] == ["alert-0001", "alert-0002"]
    first = records[0]
    assert first["topic"] == "Iran's ballistic-missile programme" and first["score"] == 0.6123
    assert first["published_at"] == "2026-11-21T07:30:00+00:00" and first["keywords"] == ["iran"]
    assert set(first) >= {"title", "url", "site_name", "passage", "story_id", "also_carried_by"}
    assert lines[0].startswith("ALERT [iran-missiles] 0.612 Story number 1")


def test_file_channel_reports_an_unwritable_sink(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = FileChannel(blocker / "alerts.jsonl", echo=None).send(alert_message(make_alert(1)))
    assert not result.ok and result.error and "Error" in result.error


def test_webhook_urls_follow_apprise_syntax() -> None:
    method, target, headers, auth = webhook_target(
        "jsons://bot:s%40cret@hooks.example.org:8443/in/x?+X-Team=ops&-v=2"
    )
    assert (method, target, headers, auth) == (
        "POST",
        "https://hooks.example.org:8443/in/x?v=2",
        {"X-Team": "ops"},
        ("bot", "s@cret"),
    )
    assert webhook_target("json://127.0.0.1:9/h?method=put")[:2] == ("PUT", "http://127.0.0.1:9/h")
    with pytest.raises(ValueError, match="not a json://"):
        webhook_target("slack://T/B/C")


def test_webhook_posts_json_with_idempotency_key_and_signature() -> None:
    with WebhookReceiver() as receiver:
        spec = channel_spec(f"json://127.0.0.1:{receiver.port}/hook?+X-Team=ops", "immediate", None)
        channel = WebhookChannel(spec, context(webhook_secret="s3cret"))
        message = alert_message(make_alert(7))
        assert channel.send(message).ok
        (request,) = receiver.requests
    assert request.path == "/hook" and request.method == "POST"
    assert request.headers["Idempotency-Key"] == "alert-0007" and request.headers["X-Team"] == "ops"
    expected = "sha256=" + hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == expected == sign(request.body, "s3cret")
    body = json.loads(request.body)
    assert body["type"] == "alert" and body["alert_id"] == "alert-0007" and body["url"].endswith("/story/7")
    assert body["title"].startswith("Story number 7") and "*Iran*" in body["text"]


def test_webhook_without_a_secret_sends_no_signature() -> None:
    with WebhookReceiver() as receiver:
        channel = WebhookChannel(
            channel_spec(f"json://127.0.0.1:{receiver.port}/h", "immediate", None), context()
        )
        assert channel.send(alert_message(make_alert(1))).ok
    assert SIGNATURE_HEADER not in receiver.requests[0].headers


def test_webhook_failures_are_reported_not_raised(closed_port: int) -> None:
    down = WebhookChannel(channel_spec(f"json://127.0.0.1:{closed_port}/h", "immediate", None), context())
    result = down.send(alert_message(make_alert(1)))
    assert not result.ok and "ConnectError" in (result.error or "")
    with WebhookReceiver(status=500) as receiver:
        failing = WebhookChannel(
            channel_spec(f"json://127.0.0.1:{receiver.port}/h", "immediate", None), context()
        )
        assert failing.send(alert_message(make_alert(1))) == type(result)(False, "HTTP 500")


def test_webhooks_obey_the_ssrf_guard_and_its_allow_list() -> None:
    with WebhookReceiver() as receiver:
        spec = channel_spec(f"json://127.0.0.1:{receiver.port}/h", "immediate", None)
        refused = WebhookChannel(spec, context(guard=AddressGuard([]))).send(alert_message(make_alert(1)))
        assert not refused.ok and "refused" in (refused.error or "") and "non-public" in (refused.error or "")
        assert receiver.requests == []  # nothing reached the private address
    metadata = WebhookChannel(
        channel_spec("json://169.254.169.254/latest", "immediate", None), context(guard=AddressGuard([]))
    )
    assert "refused" in (metadata.send(alert_message(make_alert(1))).error or "")


def test_apprise_channels_are_guarded_before_sending_and_report_per_target() -> None:
    spec = channel_spec("xml://10.0.0.1:8080/hook", "immediate", None)
    refused = AppriseChannel(spec, context(guard=AddressGuard([]))).send(alert_message(make_alert(1)))
    assert not refused.ok and "refused" in (refused.error or "")
    junk = AppriseChannel(channel_spec("nosuchscheme://x", "immediate", None), context()).send(
        alert_message(make_alert(1))
    )
    assert junk == type(junk)(False, "Apprise does not recognise this channel URL")


def test_open_channel_picks_the_implementation(tmp_path: Path) -> None:
    ctx = context()
    assert isinstance(
        open_channel(channel_spec("json://127.0.0.1:9/h", "immediate", None), ctx, tmp_path / "a"),
        WebhookChannel,
    )
    assert isinstance(
        open_channel(channel_spec("mailto://127.0.0.1:25?to=a@b.c", "immediate", None), ctx, tmp_path / "a"),
        AppriseChannel,
    )
