"""Local receivers for alert tests: a webhook server on 127.0.0.1 that can be down, failing or hanging."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic() when it arrived


class WebhookReceiver:
    """A webhook receiver that records every request and answers ``status``.

    ``hang_s`` makes it hold each answer that long after recording the request (a sender
    killed meanwhile has sent but not recorded). ``port`` can be fixed so a receiver that
    was down comes back at the same address.
    """

    def __init__(self, port: int = 0, status: int = 200, hang_s: float = 0.0) -> None:
        self.status = status
        self.hang_s = hang_s
        self.release = threading.Event()  # set it to let held answers go at once
        self.requests: list[Received] = []
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                )
                receiver.received.set()
                if receiver.hang_s:
                    receiver.release.wait(receiver.hang_s)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_PUT = do_POST  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
                pass

            def handle(self) -> None:
                with contextlib.suppress(OSError):  # the sender was killed while its answer was held
                    super().handle()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def keys(self) -> list[str]:
        """The Idempotency-Key of every request, in arrival order."""
        return [r.headers.get("Idempotency-Key", "") for r in self.requests]


def main() -> None:
    """Run a receiver by hand: ``python -m tests.alerts.receivers --port 9000`` prints each request."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    receiver = WebhookReceiver(port=args.port)
    seen: dict[str, int] = {}
    with receiver:
        print(f"listening on http://127.0.0.1:{receiver.port}", flush=True)
        try:
            done = 0
            while True:
                time.sleep(0.2)
                for r in receiver.requests[done:]:
                    key = r.headers.get("Idempotency-Key", "")
                    seen[key] = seen.get(key, 0) + 1
                    body = json.loads(r.body or b"{}")
                    print(
                        f"{r.method} {r.path} key={key} seen={seen[key]} type={body.get('type')} title={body.get('title')!r}",
                        flush=True,
                    )
                done = len(receiver.requests)
        except KeyboardInterrupt:
            print(f"{len(receiver.requests)} requests, {len(seen)} distinct keys", flush=True)


if __name__ == "__main__":
    main()
