"""The one place where the CLI runs Prefect flows.

The library never imports Prefect. ``monitor run`` and ``monitor demo`` run the same
ingest flow a deployment runs; without a Prefect server, Prefect starts a temporary
local API for the run. ``monitor serve`` serves every deployment on its schedule.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.pipeline import RunSummary


class FlowFailed(RuntimeError):
    """Raised when the flow run ended in a failed state; the message is what ended it."""


def prepare_prefect_env() -> None:
    """Set Prefect's and the model libraries' offline defaults before Prefect is imported."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_ingest_flow(
    db: Path,
    feeds: Path,
    topics: Path,
    alerts_file: Path,
    fetch_allow: list[str] | None,
    poll_all: bool,
    shard: str | None = None,
) -> RunSummary:
    """Run the ``ingest`` flow in this process and return its summary.

    Raises:
        FlowFailed: the flow run failed; the message names why.
    """
    prepare_prefect_env()
    ingest_module = importlib.import_module("flows.ingest")
    state = ingest_module.ingest(
        db=str(db),
        feeds=str(feeds),
        topics=str(topics),
        alerts_file=str(alerts_file),
        fetch_allow=fetch_allow,
        poll_all=poll_all,
        shard=shard,
        return_state=True,
    )
    if state.is_failed():
        try:
            state.result()
        except Exception as exc:
            raise FlowFailed(str(exc)) from exc
        raise FlowFailed(state.message or "the flow run failed")
    summary: RunSummary = state.result()
    return summary


class LocalPrefectServer:
    """A Prefect server on 127.0.0.1 for ``monitor serve`` when no ``PREFECT_API_URL`` is set.

    Prefect's temporary in-process API runs no scheduler, so scheduled deployments need a
    real server. Its scheduler looks for due runs every 10 s, so short intervals fire promptly.
    """

    def __init__(self, home: Path, port: int | None = None) -> None:
        import socket

        if port is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}/api"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the server and wait until it answers its health check.

        Raises:
            FlowFailed: it did not come up in time.
        """
        import urllib.request

        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "10",
        }
        env.pop("PREFECT_API_URL", None)
        log = (self.home / "server.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise FlowFailed(f"the Prefect server exited at start; see {self.home / 'server.log'}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise FlowFailed(
            f"the Prefect server did not answer within {timeout_s:g} s; see {self.home / 'server.log'}"
        )

    def stop(self) -> None:
        """Stop the server (and anything it started)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()


def serve_all(
    parameters: dict[str, Any], intervals: dict[str, int], home: Path, say: Callable[[str], None]
) -> None:
    """Run every deployment on its schedule in this process until Ctrl-C (or SIGTERM).

    Uses ``PREFECT_API_URL`` when set; otherwise starts a local Prefect server under ``home``.
    A run that is interrupted stops between transactions: every batch is written whole or not at all.
    """
    prepare_prefect_env()
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server = LocalPrefectServer(home)
        say(f"starting a Prefect server on 127.0.0.1:{server.port} (logs: {home / 'server.log'})")
        server.start()
        os.environ["PREFECT_API_URL"] = server.url
        say(f"Prefect UI: {server.url.removesuffix('/api')}")
    # A shell that starts us in the background ignores SIGINT for us; Ctrl-C must still stop serving.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from prefect import serve

        deployments = importlib.import_module("flows.deployments").served(parameters, intervals)
        say("serving " + ", ".join(d.name for d in deployments) + "; Ctrl-C stops")
        serve(*deployments, print_starting_message=False)
    except KeyboardInterrupt:
        say("stopping: runs in progress end between transactions")
    finally:
        if server is not None:
            server.stop()
