"""The ingest flow: Prefect wiring around :func:`monitor.pipeline.run_ingest`.

Only wiring lives here. Each task wraps one stage function of :mod:`monitor.pipeline`;
the pipeline decides the order, the batches and what ends a run. Batches of articles
are the unit of a task, and only the I/O tasks (polling, downloading, delivering) retry.
The flow also resolves alert URLs kept in a Prefect Secret block and publishes each run's
new matches as a Markdown artifact. With ``MONITOR_TASK_RUNNER=dask`` each batch's extraction
and embedding are task runs on a Dask cluster (``flows/cluster.py``), and storing stays here.
"""

from __future__ import annotations

from dataclasses import replace

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.cluster import compute_cluster
from flows.settings import settings_with_secrets
from monitor import pipeline

start_run = task(pipeline.start, name="start-run", cache_policy=NO_CACHE)
poll_feeds = task(pipeline.poll, name="poll-feeds", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
record_polls = task(pipeline.record, name="record-polls", cache_policy=NO_CACHE)
download = task(pipeline.download, name="download", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
process_batch = task(pipeline.process, name="process-batch", cache_policy=NO_CACHE)
# On a cluster: the same batch in two tasks there, and its write window here.
extract_batch = task(pipeline.extract_on_worker, name="extract-batch", cache_policy=NO_CACHE)
embed_batch = task(pipeline.embed_on_worker, name="embed-and-match-batch", cache_policy=NO_CACHE)
save_batch = task(pipeline.save, name="store-batch", cache_policy=NO_CACHE)
# Delivery retries are the ledger's (per channel, with back-off); a task retry would only repeat a round.
deliver_alerts = task(pipeline.deliver, name="deliver-alerts", cache_policy=NO_CACHE)
finish_run = task(pipeline.finish, name="finish-run", cache_policy=NO_CACHE)
snapshot_store = task(pipeline.snapshot, name="snapshot-for-read-copy", cache_policy=NO_CACHE)
publish_read_copy = task(pipeline.publish, name="publish-read-copy", cache_policy=NO_CACHE)

STAGES = pipeline.Stages(
    start=start_run,
    poll=poll_feeds,
    record=record_polls,
    download=download,
    process=process_batch,
    deliver=deliver_alerts,
    finish=finish_run,
    snapshot=snapshot_store,
    publish=publish_read_copy,
    # The next batch downloads in Prefect's task runner while this one is processed.
    submit=lambda task_, *args: task_.submit(*args),
    extract=extract_batch,
    embed=embed_batch,
    save=save_batch,
)


@flow(name="ingest", log_prints=True)
def ingest(
    db: str | None = None,
    feeds: str | None = None,
    topics: str | None = None,
    alerts_file: str | None = None,
    fetch_allow: list[str] | None = None,
    poll_all: bool = False,
    shard: str | None = None,
) -> pipeline.RunSummary:
    """Run one ingest cycle over every feed in the feed list.

    Args:
        db: DuckDB file (default: settings).
        feeds: feed list YAML (default: settings).
        topics: topic profiles YAML (default: settings).
        alerts_file: JSON-lines alert sink (default: settings).
        fetch_allow: hosts or CIDR ranges exempt from the private-address guard.
        poll_all: poll every feed, not only those whose adaptive schedule says they are due.
        shard: ``K/N``: poll only shard K of N of the feed list (one deployment per shard).

    Returns:
        The run's counts per stage.

    Raises:
        AllFeedsFailed: every feed failed to poll (the run is recorded as failed).
    """
    settings = settings_with_secrets(
        db=db, feeds=feeds, topics=topics, alerts_file=alerts_file, fetch_allow=fetch_allow, shard=shard
    )
    log = get_run_logger()
    with compute_cluster(settings) as cluster:
        if cluster is not None:
            log.info("extraction and embedding on a Dask cluster of %d workers", cluster.workers)
        summary = pipeline.run_ingest(
            settings,
            poll_all=poll_all,
            flow_run_id=flow_run.get_id(),
            stages=STAGES if cluster is None else replace(STAGES, cluster=cluster),
            log=log,
            purpose=f"ingest flow run {flow_run.get_name() or ''}".strip(),
        )
    create_markdown_artifact(
        markdown=pipeline.report_markdown(settings, summary),
        key="ingest-new-matches",
        description=f"New matches of run {summary.run_id}",
    )
    return summary
