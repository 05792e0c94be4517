"""The one place where the CLI runs a Prefect flow.

The library never imports Prefect. ``monitor run`` and ``monitor demo`` run the same
ingest flow a deployment runs; without a Prefect server, Prefect starts a temporary
local API for the run.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

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
    db: Path, feeds: Path, topics: Path, alerts_file: Path, fetch_allow: list[str] | None, poll_all: bool
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
