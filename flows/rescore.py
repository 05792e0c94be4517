"""The ``rescore`` flow: run by hand after topics.yaml changes."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.settings import settings_with_secrets
from monitor.matching.rescore import rescore_store


@flow(name="rescore", log_prints=True)
def rescore(db: str | None = None, topics: str | None = None, alert: bool = False) -> dict[str, object]:
    """Recompute every match from stored embeddings with the topics in force.

    Args:
        db: DuckDB file (default: settings).
        topics: topic profiles YAML (default: settings).
        alert: queue alerts for articles that newly match.

    Returns:
        Articles, passages, matches added, updated and removed, alerts queued, seconds.
    """
    log = get_run_logger()
    return rescore_store(settings_with_secrets(db=db, topics=topics), alert=alert, progress=log.info)
