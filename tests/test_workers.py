"""Worker pools end with the process that started them, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

OWNER = """
import os, sys, time
from monitor.pipeline.workers import owned_pool
if __name__ == "__main__":
    pool = owned_pool(1)
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too: it only waits for its parent (the forkserver) to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def test_a_worker_exits_when_its_owner_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert owner.stdout is not None
        worker = int(owner.stdout.readline())
        assert worker != owner.pid and not _gone(worker)
        time.sleep(1.5)
        assert not _gone(worker)  # alive while its owner is
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(worker), f"worker {worker} outlived its owner"
    finally:
        owner.kill()
