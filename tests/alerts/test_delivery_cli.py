"""`monitor alerts deliver` as a process: killed between sending and recording, then run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from monitor.alerts.routing import channel_spec, file_spec
from tests.alerts.conftest import queue
from tests.alerts.receivers import WebhookReceiver
from tests.rows import TOPIC

MONITOR = [sys.executable, "-m", "monitor.cli"]


def environment(tmp_path: Path, url: str) -> dict[str, str]:
    topics = tmp_path / "topics.yaml"
    topic = {"id": TOPIC.topic_id, "name": TOPIC.name, "description": TOPIC.description,
             "threshold": TOPIC.threshold, "exemplars": list(TOPIC.exemplars)}  # fmt: skip
    topics.write_text(yaml.safe_dump({"topics": [topic]}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(
        MONITOR_DB=str(tmp_path / "m.duckdb"),
        MONITOR_TOPICS=str(topics),
        MONITOR_ALERTS_FILE=str(tmp_path / "alerts.jsonl"),
        MONITOR_ALERT_URLS=url,
        MONITOR_FETCH_ALLOW="127.0.0.1",
        MONITOR_READ_TIMEOUT_S="60",
        MONITOR_TOTAL_TIMEOUT_S="60",
    )
    return env


@pytest.mark.slow
def test_a_sender_killed_between_send_and_record_loses_nothing_and_repeats_with_the_same_key(
    tmp_path: Path,
) -> None:
    with WebhookReceiver(hang_s=60) as receiver:
        url = f"json://127.0.0.1:{receiver.port}/hook"
        alerts = queue(
            tmp_path / "m.duckdb",
            [1, 2, 3],
            [file_spec(tmp_path / "alerts.jsonl"), channel_spec(url, "immediate", None)],
        )
        env = environment(tmp_path, url)
        sender = subprocess.Popen(
            [*MONITOR, "alerts", "deliver", "--quiet"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert receiver.received.wait(60), "the first alert never arrived"
            os.kill(sender.pid, signal.SIGKILL)  # the receiver holds its answer: sent, never recorded
        finally:
            sender.wait(30)
        with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
            claimed = con.execute(
                "SELECT alert_id, status, claimed_by FROM deliveries WHERE channel_id <> 'file' AND status = 'sending'"
            ).fetchall()
        assert [c[0] for c in claimed] == alerts  # all three claimed by the dead sender
        receiver.hang_s = 0
        receiver.release.set()
        rerun = subprocess.run(
            [*MONITOR, "alerts", "deliver", "--quiet"], env=env, capture_output=True, text=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr
        assert "resent after an interrupted delivery" in rerun.stderr
        keys = receiver.keys()
    assert set(keys) == set(alerts)  # nothing lost
    assert keys[0] == keys[1] == alerts[0]  # the one repeat carries the same idempotency key
    assert keys[1:] == alerts  # then each alert once, oldest first
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT alert_id, status, attempts FROM deliveries WHERE channel_id <> 'file' ORDER BY created_at, alert_id"
        ).fetchall()
    assert rows == [(alerts[0], "sent", 2), (alerts[1], "sent", 2), (alerts[2], "sent", 2)]


@pytest.mark.slow
def test_alerts_log_lists_deliveries_per_channel(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        url = f"json://127.0.0.1:{receiver.port}/hook"
        queue(
            tmp_path / "m.duckdb",
            [1, 2],
            [file_spec(tmp_path / "alerts.jsonl"), channel_spec(url, "immediate", None)],
        )
        env = environment(tmp_path, url)
        assert (
            subprocess.run(
                [*MONITOR, "alerts", "deliver"], env=env, capture_output=True, timeout=120
            ).returncode
            == 0
        )
    out = subprocess.run(
        [*MONITOR, "alerts", "log", "--format", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    rows = __import__("json").loads(out.stdout)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"sent"}
    assert {r["channel"].split("/")[0] for r in rows} == {"file:", "json:"}
    assert all("127.0.0.1" in r["channel"] for r in rows if r["channel"].startswith("json"))
