"""The ingest pipeline: its stage functions and its policy, with no orchestrator in sight.

One run: load the feed list and topics, take the writer lease, record the run, poll the
feeds that are due, record what they listed, then fetch → extract → embed → match →
store in batches, deliver alerts, and record the run's counts.

:func:`run_ingest` holds that policy (what runs in which order, batch by batch, what
ends a run). The stages it calls are plain functions, passed in as :class:`Stages`, so
the Prefect flow (``flows/ingest.py``) wraps each one in a task and hands them over,
while tests, benchmarks and the CLI can call the same code directly.
"""

from monitor.pipeline.analysis import (
    Analysed,
    Cluster,
    Extracted,
    analyse,
    embed_on_worker,
    extract_on_worker,
)
from monitor.pipeline.records import (
    RUN_COUNTERS,
    STAGE_SECONDS,
    AllFeedsFailed,
    BatchResult,
    Downloaded,
    RunStart,
    RunSummary,
)
from monitor.pipeline.run import Stages, batches, run_ingest, tally_polls
from monitor.pipeline.stages import (
    deliver,
    download,
    finish,
    poll,
    process,
    publish,
    record,
    report_markdown,
    save,
    snapshot,
    start,
    store_batch,
)

__all__ = [
    "RUN_COUNTERS",
    "STAGE_SECONDS",
    "AllFeedsFailed",
    "Analysed",
    "BatchResult",
    "Cluster",
    "Downloaded",
    "Extracted",
    "RunStart",
    "RunSummary",
    "Stages",
    "analyse",
    "batches",
    "deliver",
    "download",
    "embed_on_worker",
    "extract_on_worker",
    "finish",
    "poll",
    "process",
    "publish",
    "record",
    "report_markdown",
    "run_ingest",
    "save",
    "snapshot",
    "start",
    "store_batch",
    "tally_polls",
]
