"""``monitor ui``: the review page on this machine, to judge flagged matches with the keyboard.

Serves the review queue, story timelines and the coverage chart on http://127.0.0.1:8780/
(everything from the monitor itself: it works offline). The page has no login, so it is
served on a loopback address only. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import webbrowser
from typing import Any

from monitor.cli.common import EXIT_OK, EXIT_USAGE, add_db, fail, settings_from
from monitor.config import Settings

DEFAULT_PORT = 8780


def add_commands(sub: Any, settings: Settings) -> None:
    """Register ``ui``."""
    ui = sub.add_parser(
        "ui",
        help="the review page on http://127.0.0.1:8780: judge matches with the keyboard",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db(ui, settings.db)
    ui.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default: %(default)s)"
    )
    ui.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s; 0 picks a free one)"
    )
    ui.add_argument("--open", action="store_true", help="open the page in a web browser")
    ui.set_defaults(handler=cmd_ui)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on the host and port (raises OSError when it is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def page_url(host: str, port: int) -> str:
    """The page's address, ``http://127.0.0.1:8780/`` (IPv6 in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the review page until interrupted."""
    import uvicorn

    from monitor.ui.app import create_app, is_loopback

    if not is_loopback(args.host):
        return fail(
            f"refusing --host {args.host}: the review page has no login, so it listens on a loopback "
            "address only (127.0.0.1, ::1 or localhost); reach it from elsewhere through an SSH tunnel",
            EXIT_USAGE,
        )
    if not 0 <= args.port <= 65535:
        return fail(f"--port must be from 0 to 65535, got {args.port}", EXIT_USAGE)
    host = "127.0.0.1" if args.host.lower() == "localhost" else args.host.strip("[]")
    settings = settings_from(args)
    try:
        sock = _listen(host, args.port)
    except OSError as exc:
        return fail(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}; choose another --port")
    url = page_url(host, sock.getsockname()[1])
    if settings.store == "duckdb" and not settings.db.exists():
        print(
            f"monitor: no database yet at {settings.db}; run `monitor demo` or `monitor run`", file=sys.stderr
        )
    print(f"Review page: {url}  (store {settings.store_target}; Ctrl-C stops)", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", access_log=False, lifespan="off")
    )
    if args.open:
        # Opened once the server is up, so the browser does not race the first request.
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on the first Ctrl-C and then re-raises it.
        pass
    finally:
        sock.close()
    print("Review page stopped.", flush=True)
    return EXIT_OK


def _open_when_started(server: Any, url: str) -> None:
    """Open the page in a browser once uvicorn reports it is serving (give up after 5 s)."""
    for _ in range(100):
        if server.started:
            webbrowser.open(url)
            return
        threading.Event().wait(0.05)
