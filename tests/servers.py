"""Local HTTP servers for tests: routes scripted per test, misbehaviour included.

Every server binds a loopback address only.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Route:
    """A canned response, or a custom handler for misbehaviour."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    handler: Handler | None = None


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print tracebacks when a client hangs up mid-response."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class ScriptedServer:
    """An HTTP server on 127.0.0.x whose routes a test sets up.

    Args:
        host: loopback address to bind.

    Attributes:
        requests: paths requested so far, in order.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                outer.request_headers.append({k.lower(): v for k, v in self.headers.items()})
                route = outer.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.handler is not None:
                    route.handler(self)
                    return
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in route.headers:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = _QuietServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self.base = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, path: str, status: int = 200, body: bytes | str = b"", **headers: str) -> str:
        """Serve a canned response at ``path``; returns its absolute URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(status, data, {k.replace("_", "-"): v for k, v in headers.items()})
        return self.base + path

    def add_handler(self, path: str, handler: Handler) -> str:
        """Serve ``path`` with a custom handler; returns its absolute URL."""
        self.routes[path] = Route(handler=handler)
        return self.base + path


def slow_drip(interval_s: float = 0.5, chunks: int = 1000) -> Handler:
    """A handler that sends a byte every ``interval_s`` seconds (a slow-loris body)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(chunks))
        h.end_headers()
        try:
            for _ in range(chunks):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(interval_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handle


def endless(content_type: str = "text/html") -> Handler:
    """A handler that streams a body with no end until the client hangs up."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"<p>" + b"a" * 65536 + b"</p>"
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            for _ in range(100_000):
                h.wfile.write(frame)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handle


def conditional(etag: str, body: bytes, content_type: str = "text/html") -> Handler:
    """A handler that answers 304 when If-None-Match carries ``etag``, else 200 with ``body``."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("ETag", etag)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


def stall_after_headers(
    declared_length: int, stall_s: float = 5.0, content_type: str = "text/html"
) -> Handler:
    """A handler that declares a large Content-Length, sends a few bytes, then stalls.

    A client that tries to read the body hangs until its timeout; one that refuses
    on the declared length returns at once.
    """

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(declared_length))
        h.end_headers()
        try:
            h.wfile.write(b"<html>")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        time.sleep(stall_s)

    return handle


def delayed_headers(delay_s: float) -> Handler:
    """A handler that sends nothing at all for ``delay_s`` seconds, then a tiny page."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        time.sleep(delay_s)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", "2")
            h.end_headers()
            h.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handle


class LoopbackOnlySockets:
    """Test sentinel: records every socket ``connect`` and refuses any outside 127.0.0.0/8.

    Installed with :meth:`install`, it patches ``socket.socket.connect`` and
    ``connect_ex`` for the duration of one test, so a guard failure shows up as a
    recorded (and refused) connect instead of real traffic.

    Attributes:
        calls: every address passed to connect, in order.
        refused: the addresses the sentinel refused (outside 127.0.0.0/8).
    """

    LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.refused: list[Any] = []

    @classmethod
    def install(cls, monkeypatch: Any) -> LoopbackOnlySockets:
        """Patch socket.socket for the current test; returns the recorder."""
        recorder = cls()
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex

        def connect(sock: socket.socket, address: Any) -> None:
            recorder._check(sock, address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            recorder._check(sock, address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        return recorder

    def _check(self, sock: socket.socket, address: Any) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        self.calls.append(address)
        try:
            ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        except ValueError:
            ip = None
        if ip is None or ip.version != 4 or ip not in self.LOOPBACK:
            self.refused.append(address)
            raise ConnectionRefusedError(f"test sentinel: connect to {address!r} outside 127.0.0.0/8")


class FastScriptedServer(ScriptedServer):
    """A :class:`ScriptedServer` that shuts down in milliseconds.

    ``serve_forever`` polls for shutdown every 20 ms instead of the default 500 ms,
    which otherwise adds half a second to every test's teardown.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )


def streamed_body(
    total_bytes: int,
    content_type: str = "application/rss+xml",
    declare_length: bool = True,
    chunk_bytes: int = 1024 * 1024,
) -> Handler:
    """A handler that streams ``total_bytes`` of filler, with Content-Length or chunked.

    The filler is generated chunk by chunk, so the server never holds the whole body.
    """

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        if declare_length:
            h.send_header("Content-Length", str(total_bytes))
        else:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"<!-- " + b"x" * (chunk_bytes - 9) + b" -->"
        sent = 0
        try:
            while sent < total_bytes:
                piece = chunk[: total_bytes - sent]
                if declare_length:
                    h.wfile.write(piece)
                else:
                    h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            if not declare_length:
                h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handle


def lying_etag(
    etag: str, bodies: Callable[[int], bytes], content_type: str = "application/rss+xml"
) -> Handler:
    """A handler that ignores If-None-Match and answers 200 with the same ETag every time.

    ``bodies(n)`` gives the body of the n-th request (0-based), so a test decides whether
    the content changes behind the unchanging validator.
    """
    calls = {"n": 0}

    def handle(h: BaseHTTPRequestHandler) -> None:
        body = bodies(calls["n"])
        calls["n"] += 1
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("ETag", etag)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


class BurstScriptedServer(FastScriptedServer):
    """A :class:`FastScriptedServer` whose listen backlog takes a burst of connections.

    socketserver listens with a backlog of 5; when a client opens a few dozen
    connections at once the rest wait for a SYN retransmit (about 1 s), which a
    short connect timeout reports as ConnectTimeout.
    """

    def __init__(self, host: str = "127.0.0.1", backlog: int = 128) -> None:
        super().__init__(host)
        self._server.socket.listen(backlog)
