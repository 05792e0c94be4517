"""Alert channels: one protocol, three implementations.

A channel sends the message it is handed and says whether it went out; it never retries
on its own. What to send, when, and what to do after a failure is the ledger's business
(:mod:`monitor.alerts.delivery`).

* :class:`FileChannel`: one JSON line per message appended to a file (fsynced), plus a
  console line: the local record of every alert.
* :class:`WebhookChannel`: ``json://`` and ``jsons://`` URLs (Apprise's syntax), sent by the
  monitor itself so that each request carries ``Idempotency-Key: <alert id>`` and, when a
  secret is set, ``X-Monitor-Signature: sha256=<HMAC of the body>``; Apprise can do neither.
  Requests go through the same guarded HTTP client as feeds (SSRF guard on every
  connection, timeouts, ``MONITOR_FETCH_ALLOW``).
* :class:`AppriseChannel`: every other Apprise URL (Slack, Teams, Discord, ``mailto://``,
  ntfy, ...). A host part that names a network host is resolved and checked by the same
  guard before anything is sent; Apprise's per-target result tells a failure from a success.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import httpx

from monitor.alerts.messages import Message
from monitor.alerts.routing import ChannelSpec
from monitor.ingest.guard import AddressGuard, BlockedAddress, guarded_transport

SIGNATURE_HEADER = "X-Monitor-Signature"
WEBHOOK_SCHEMES = {"json": "http", "jsons": "https"}


@dataclass(frozen=True)
class SendResult:
    """The outcome of sending one message on one channel."""

    ok: bool
    error: str | None = None


class Channel(Protocol):
    """Somewhere alerts go.

    Attributes:
        name: the channel's masked URL, as the ledger shows it.
    """

    name: str

    def send(self, message: Message) -> SendResult:
        """Send one message; never raises for a failed target, reports it instead."""
        ...


@dataclass(frozen=True)
class ChannelContext:
    """What every outbound channel obeys: the feeds' guard and timeouts, and the webhook secret."""

    guard: AddressGuard
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    user_agent: str = "news-coverage-monitor"
    webhook_secret: str | None = None
    echo: Callable[[str], None] | None = print


class FileChannel:
    """Append each message's JSON payload as one line to a file, and echo a console line.

    Args:
        path: the JSON-lines file; its directory is created if needed.
        echo: where console lines go (``None`` for silence).
    """

    def __init__(self, path: Path, echo: Callable[[str], None] | None = print) -> None:
        self.path = path
        self.echo = echo
        self.name = f"file:{path}"

    def send(self, message: Message) -> SendResult:
        """Append one line (fsynced, so a line that was reported written survives a crash)."""
        record = {k: v for k, v in message.payload.items() if k not in ("type", "text")}
        if message.payload.get("type") == "digest":
            record = {"type": "digest", **record}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as sink:
                sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            return SendResult(False, f"{type(exc).__name__}: {exc}")
        if self.echo is not None:
            self.echo(message.console)
        return SendResult(True)


def webhook_target(url: str) -> tuple[str, str, dict[str, str], tuple[str, str] | None]:
    """Read an Apprise-style ``json://`` / ``jsons://`` URL.

    ``json://user:pass@host:port/path?+Header=Value&-param=value&method=PUT`` posts to
    ``http://host:port/path?param=value`` with the header, basic auth and method given.

    Returns:
        ``(method, http_url, headers, basic_auth)``.

    Raises:
        ValueError: not a json:// or jsons:// URL with a host.
    """
    parts = urlsplit(url)
    scheme = WEBHOOK_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"not a json:// or jsons:// webhook URL with a host: {url!r}")
    headers: dict[str, str] = {}
    params: list[tuple[str, str]] = []
    method = "POST"
    # Not parse_qsl: it reads "+" as a space, and "+Header" is how Apprise URLs add a header.
    pairs = [item.partition("=") for item in parts.query.split("&") if item]
    for key, value in ((unquote(k), unquote(v)) for k, _, v in pairs):
        if key.startswith("+") and len(key) > 1:
            headers[key[1:]] = value
        elif key.startswith("-") and len(key) > 1:
            params.append((key[1:], value))
        elif key.lower() == "method" and value.upper() in ("POST", "PUT", "PATCH"):
            method = value.upper()
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    target = urlunsplit((scheme, netloc, parts.path or "/", urlencode(params), ""))
    return method, target, headers, auth


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """POST each message's JSON payload to a webhook, with an idempotency key and a signature.

    Args:
        spec: the channel (its URL is ``json://`` or ``jsons://``).
        context: guard, timeouts and the signing secret.
    """

    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        self.name = spec.name
        self.context = context
        self.method, self.target, self.headers, self.auth = webhook_target(spec.url)

    def send(self, message: Message) -> SendResult:
        """POST the payload; any 2xx answer counts as delivered."""
        body = json.dumps(message.payload, ensure_ascii=False, default=str, sort_keys=True).encode("utf-8")
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "User-Agent": self.context.user_agent,
            "Idempotency-Key": message.key,
        }
        if self.context.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(body, self.context.webhook_secret)
        try:
            return asyncio.run(self._post(body, headers))
        except BlockedAddress as exc:
            return SendResult(False, f"refused: {exc}")

    async def _post(self, body: bytes, headers: dict[str, str]) -> SendResult:
        c = self.context
        timeout = httpx.Timeout(
            connect=c.connect_timeout_s, read=c.read_timeout_s, write=c.read_timeout_s, pool=c.total_timeout_s
        )
        async with httpx.AsyncClient(
            transport=guarded_transport(c.guard, max_connections=2),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            try:
                async with asyncio.timeout(c.total_timeout_s):
                    response = await client.request(
                        self.method, self.target, content=body, headers=headers, auth=self.auth
                    )
            except TimeoutError:
                return SendResult(False, f"timed out after {c.total_timeout_s:g} s")
            except BlockedAddress as exc:
                return SendResult(False, f"refused: {exc}")
            except httpx.HTTPError as exc:
                return SendResult(False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= response.status_code < 300:
            return SendResult(True)
        return SendResult(False, f"HTTP {response.status_code}")


def _network_host(plugin: Any) -> tuple[str, int] | None:
    """The network host a plugin connects to, when its URL names one (not a token)."""
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not isinstance(host, str) or not host:
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if "." not in host and host.lower() != "localhost":
            return None  # a token in the host position (slack://T0/B0/X, discord://id/token)
    port = getattr(plugin, "port", None)
    return host, int(port) if isinstance(port, int) else 0


class AppriseChannel:
    """Send each message through Apprise to one URL (Slack, Teams, Discord, mailto://, ntfy, ...).

    Args:
        spec: the channel.
        context: guard and timeouts.
    """

    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        import apprise

        self.name = spec.name
        self.context = context
        self._apprise = apprise.Apprise()
        self._valid = bool(self._apprise.add(spec.url))

    def send(self, message: Message) -> SendResult:
        """Notify; the per-target result decides success."""
        import apprise

        if not self._valid:
            return SendResult(False, "Apprise does not recognise this channel URL")
        for plugin in self._apprise:
            target = _network_host(plugin)
            if target is not None:
                try:
                    asyncio.run(self.context.guard.resolve(*target))
                except BlockedAddress as exc:
                    return SendResult(False, f"refused: {exc}")
        result = self._apprise.notify(
            body=message.markdown,
            title=message.title,
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=self.context.total_timeout_s,
        )
        if result:
            return SendResult(True)
        reasons = []
        for target_result in result:
            if not target_result:
                logs = [entry.message for entry in target_result.logs()]
                reasons.append(f"{target_result.name}: {logs[-1] if logs else 'failed'}")
        return SendResult(False, "; ".join(reasons) or f"Apprise: {result.status.name.lower()}")


def open_channel(spec: ChannelSpec, context: ChannelContext, alerts_file: Path) -> Channel:
    """The channel implementation for a spec: the file sink, a webhook, or Apprise."""
    if spec.url.startswith("file://"):
        return FileChannel(alerts_file, context.echo)
    if urlsplit(spec.url).scheme.lower() in WEBHOOK_SCHEMES:
        return WebhookChannel(spec, context)
    return AppriseChannel(spec, context)
