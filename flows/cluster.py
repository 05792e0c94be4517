"""The ingest flow's compute cluster: prefect-dask's task runner, when ``MONITOR_TASK_RUNNER=dask``.

With the default ``threads`` nothing here runs and Dask is never imported. With ``dask``,
the flow connects to the scheduler at ``MONITOR_DASK_ADDRESS``, or starts a local cluster of
``MONITOR_DASK_WORKERS`` processes for the run and stops it afterwards. Each batch's
extraction and embedding are then Prefect task runs on the cluster's workers (see
``monitor.pipeline.analysis``); the flow keeps polling, downloading and storing.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import Task

from monitor.config import Settings


class DaskCluster:
    """A :class:`monitor.pipeline.analysis.Cluster` on prefect-dask's ``DaskTaskRunner``.

    Args:
        runner: a started ``DaskTaskRunner``.
        capacity: batches to keep in flight; default: twice the cluster's workers.
    """

    def __init__(self, runner: Any, capacity: int | None) -> None:
        self.runner = runner
        workers = len(runner.client.scheduler_info().get("workers", {})) or 1
        self.workers = workers
        self.capacity = capacity or 2 * workers

    def submit(self, task_: Task[..., Any], *args: Any) -> Any:
        """Run a Prefect task on the cluster with these arguments; return its Prefect future.

        Raises:
            TypeError: ``task_`` is a plain function, not a Prefect task.
        """
        if not isinstance(task_, Task):
            raise TypeError(f"a Dask cluster runs Prefect tasks, not {task_!r}")
        parameters = inspect.signature(task_.fn).bind(*args).arguments
        return self.runner.submit(task_, parameters=dict(parameters))


def task_runner_for(settings: Settings) -> Any:
    """The ``DaskTaskRunner`` the settings describe (not started)."""
    from prefect_dask import DaskTaskRunner  # only when selected: the default run imports no Dask

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": 1,  # each encoder already uses the cores with its own threads
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )


@contextmanager
def compute_cluster(settings: Settings) -> Iterator[DaskCluster | None]:
    """The cluster for this run while the block runs, or None with ``task_runner=threads``."""
    if settings.task_runner != "dask":
        yield None
        return
    with task_runner_for(settings) as runner:
        yield DaskCluster(runner, settings.dask_batches_in_flight)
