"""The ``maintenance`` flow: daily checkpoint and vacuum, Parquet exports, a fresh read copy."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.settings import settings_with_secrets
from monitor.maintenance import run_maintenance


@flow(name="maintenance", log_prints=True)
def maintenance(db: str | None = None, export_dir: str | None = None) -> dict[str, object]:
    """Checkpoint and vacuum the database, export finished days to Parquet, refresh the analysts' read copy.

    Args:
        db: DuckDB file (default: settings).
        export_dir: where the Parquet exports go (default: exports/ beside the database).

    Returns:
        Seconds per step and the days exported.
    """
    report = run_maintenance(
        settings_with_secrets(db=db, export_dir=export_dir), progress=get_run_logger().info
    )
    return {"seconds": report.seconds, "exported": report.exported}
