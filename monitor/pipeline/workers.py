"""Worker-process pools that end with the process that started them.

The pipeline's pools (feed parsers, the extraction worker) start their workers through
multiprocessing's forkserver, so that they inherit none of the run's threads. A worker's
parent is then the forkserver, not the run, and when the run is killed (SIGKILL, the OOM
killer) nothing tells the worker: it would wait on its task queue for ever. Each worker
therefore watches the run's process id and exits once that process is gone.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time

WATCH_INTERVAL_S = 1.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (pid reused): the run is gone
        return False
    return True


def _watch(owner: int) -> None:
    while _alive(owner):
        time.sleep(WATCH_INTERVAL_S)
    os._exit(0)


def _start_watching(owner: int) -> None:
    threading.Thread(target=_watch, args=(owner,), name="watch-owner", daemon=True).start()


def owned_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A forkserver process pool whose workers exit when this process dies.

    Args:
        workers: worker processes.
    """
    return concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("forkserver"),
        initializer=_start_watching,
        initargs=(os.getpid(),),
    )
