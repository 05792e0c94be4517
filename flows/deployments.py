"""Every deployment of the monitor, for ``monitor serve`` (``prefect.yaml`` declares the same ones).

A test checks that the two agree, so a schedule changed in one place is changed in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect.flows import Flow

from flows.alerts import deliver, digest
from flows.ingest import ingest
from flows.maintenance import maintenance
from flows.rescore import rescore


@dataclass(frozen=True)
class Schedule:
    """One deployment: its flow, when it runs, and whether only one run at a time may go."""

    name: str
    flow: Flow[..., Any]
    interval_s: int | None = None
    cron: str | None = None
    concurrency_limit: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


SCHEDULES = (
    Schedule("ingest", ingest, interval_s=900, concurrency_limit=1),
    Schedule("deliver", deliver, interval_s=60, concurrency_limit=1),
    Schedule("digest", digest, cron="0 7 * * *", concurrency_limit=1),
    Schedule("rescore", rescore, concurrency_limit=1),  # by hand, when topics change
    Schedule("maintenance", maintenance, cron="30 3 * * *", concurrency_limit=1),
)


def served(parameters: dict[str, Any] | None = None, intervals: dict[str, int] | None = None) -> list[Any]:
    """The deployments as ``prefect.serve`` takes them.

    Args:
        parameters: flow parameters for every deployment that accepts them (``db``, ``feeds``, ...).
        intervals: override a deployment's schedule with an interval in seconds (``{"ingest": 60}``).
    """
    out = []
    for s in SCHEDULES:
        accepted = set(s.flow.parameters.properties)
        params = {
            k: v for k, v in {**(parameters or {}), **s.parameters}.items() if k in accepted and v is not None
        }
        interval = (intervals or {}).get(s.name, s.interval_s)
        schedule: dict[str, Any] = {}
        if interval:
            schedule["interval"] = interval
        elif s.cron:
            schedule["cron"] = s.cron
        out.append(
            s.flow.to_deployment(
                name=s.name, parameters=params, concurrency_limit=s.concurrency_limit, **schedule
            )
        )
    return out
