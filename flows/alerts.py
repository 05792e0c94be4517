"""The alert flows: ``deliver`` (what is due, every minute) and ``digest`` (each topic's digest, daily)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.settings import settings_with_secrets
from monitor.alerts.service import deliver_due
from monitor.matching.topics import load_topics
from monitor.store import WriterBusy

# A round that finds an ingest run writing waits this long, then lets the run deliver at its end.
BUSY_WAIT_S = 20.0


def _round(
    db: str | None, topics: str | None, alerts_file: str | None, digests: bool, topic: str | None
) -> dict[str, int]:
    settings = settings_with_secrets(db=db, topics=topics, alerts_file=alerts_file)
    log = get_run_logger()
    try:
        report = deliver_due(
            settings, load_topics(settings.topics), digests, topic, echo=None, wait_s=BUSY_WAIT_S
        )
    except WriterBusy as exc:
        log.info("skipped: %s; the writer delivers at its end, or the next round does", exc)
        return {"sent": 0, "digests": 0, "folded": 0, "gave_up": 0, "skipped": 1}
    for outcome in report.channels.values():
        if outcome.error:
            # An outage is the ledger's to handle (back-off, then the backlog): a warning, not a failed run.
            log.warning("%s: %s (%d waiting)", outcome.name, outcome.error, outcome.waiting + outcome.failed)
    log.info(
        "%d messages sent (%d digests), %d folded into the digest, %d resent after an interruption, %d given up",
        report.sent, report.digests, report.folded, report.released, report.gave_up,
    )  # fmt: skip
    return {
        "sent": report.sent,
        "digests": report.digests,
        "folded": report.folded,
        "gave_up": report.gave_up,
    }


@flow(name="deliver", log_prints=True)
def deliver(
    db: str | None = None, topics: str | None = None, alerts_file: str | None = None
) -> dict[str, int]:
    """Send every alert that is due, on every channel (retries and budgets are the ledger's).

    Args:
        db: DuckDB file (default: settings).
        topics: topic profiles YAML (default: settings).
        alerts_file: JSON-lines alert sink (default: settings).

    Returns:
        Messages sent, digests, alerts folded into the digest and given up.
    """
    return _round(db, topics, alerts_file, digests=False, topic=None)


@flow(name="digest", log_prints=True)
def digest(
    db: str | None = None, topics: str | None = None, alerts_file: str | None = None, topic: str | None = None
) -> dict[str, int]:
    """Send each topic's digest on each channel: its stories ranked by score, each once.

    Args:
        db: DuckDB file (default: settings).
        topics: topic profiles YAML (default: settings).
        alerts_file: JSON-lines alert sink (default: settings).
        topic: only this topic's digest.

    Returns:
        Messages sent and digests.
    """
    return _round(db, topics, alerts_file, digests=True, topic=topic)
