"""Alert channels: one protocol, several implementations.

A channel only sends what it is handed and reports, per alert, whether it went out.
What to send and when (the outbox, retries) is decided by :mod:`monitor.alerts.delivery`.
The first channel is local: one JSON line per alert appended to a file, plus a console
line. Each line carries ``alert_id`` as an idempotency key, so a consumer can drop the
rare duplicate left by a run killed between writing and marking.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from monitor.alerts.messages import alert_record, console_line
from monitor.models import Alert


@dataclass(frozen=True)
class Delivery:
    """What happened to a batch of alerts on one channel."""

    channel: str
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    """Somewhere alerts go.

    Attributes:
        name: identifies the channel in the outbox (``file:/path/alerts.jsonl``).
    """

    name: str

    def send(self, alerts: Sequence[Alert]) -> Delivery:
        """Send alerts; never raises for a failed target, but reports it per alert."""
        ...


class FileChannel:
    """Append alerts to a JSON-lines file (fsynced) and echo a console line for each.

    Args:
        path: the JSON-lines file; its directory is created if needed.
        echo: where console lines go (``None`` for silence).
    """

    def __init__(self, path: Path, echo: Callable[[str], None] | None = print) -> None:
        self.path = path
        self.echo = echo
        self.name = f"file:{path}"

    def send(self, alerts: Sequence[Alert]) -> Delivery:
        """Append the alerts; an I/O error fails every one of them, with its message."""
        delivery = Delivery(channel=self.name)
        if not alerts:
            return delivery
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as sink:
                for alert in alerts:
                    sink.write(json.dumps(alert_record(alert), ensure_ascii=False) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            return Delivery(self.name, failed={a.alert_id: f"{type(exc).__name__}: {exc}" for a in alerts})
        for alert in alerts:
            delivery.delivered.append(alert.alert_id)
            if self.echo is not None:
                self.echo(console_line(alert))
        return delivery


def deliver_to_file(
    alerts: Sequence[Alert], path: Path, echo: Callable[[str], None] | None = print
) -> Delivery:
    """Append alerts to a JSON-lines file and echo a line for each (a one-off :class:`FileChannel`)."""
    return FileChannel(path, echo).send(alerts)
