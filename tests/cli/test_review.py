"""`monitor review`: a real pseudo-terminal walk, and the non-interactive forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pexpect
import pytest

from monitor.alerts.routing import file_spec
from tests.alerts.conftest import queue

MONITOR = [sys.executable, "-m", "monitor.cli"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    queue(tmp_path / "m.duckdb", [1, 2, 3, 4], [file_spec(tmp_path / "alerts.jsonl")])
    return tmp_path / "m.duckdb"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return {**base, "NO_COLOR": "1", "MONITOR_REVIEWER": "tester", **extra}


def reviews(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT a.title, r.verdict, r.note, r.reviewer, round(r.score, 3), r.threshold, m.status "
            "FROM reviews r JOIN articles a USING (article_id) JOIN matches m USING (article_id, topic_id) "
            "ORDER BY r.reviewed_at"
        ).fetchall()


def test_keystrokes_in_a_terminal_record_verdicts_newest_first(db: Path) -> None:
    child = pexpect.spawn(
        MONITOR[0], [*MONITOR[1:], "review", "--db", str(db)], env=env(), encoding="utf-8", timeout=60
    )
    try:
        child.expect(r"\[1/4\] Topic one  score 0\.604 \(threshold 0\.500\)")  # newest (article 4) first
        child.expect("Title 4")
        child.expect(r"\[r\] relevant")
        child.send("r")
        child.expect("saved: relevant")
        child.expect("Title 3")
        child.send("c")
        child.expect("note: ")
        child.sendline("same wire copy as another")
        child.expect("note kept")
        child.send("n")
        child.expect(r"saved: not-relevant \(note: same wire copy as another\)")
        child.expect("Title 2")
        child.send("s")
        child.expect("skipped")
        child.expect("Title 1")
        child.send("q")
        child.expect(r"1 relevant, 1 not relevant, 1 skipped\.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert reviews(db) == [
        ("Title 4", "relevant", None, "tester", 0.604, 0.5, "relevant"),
        ("Title 3", "not-relevant", "same wire copy as another", "tester", 0.603, 0.5, "not-relevant"),
    ]


def test_list_as_json_and_a_verdict_by_id(db: Path) -> None:
    listed = subprocess.run([*MONITOR, "review", "--db", str(db), "--list", "--format", "json"], env=env(),
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    items = json.loads(listed.stdout)
    assert [i["title"] for i in items] == ["Title 4", "Title 3", "Title 2", "Title 1"]
    assert set(items[0]) >= {
        "article_id",
        "topic_id",
        "score",
        "threshold",
        "outlet",
        "published_at",
        "passage",
    }
    prefix = items[1]["article_id"][:8]
    done = subprocess.run([*MONITOR, "review", prefix, "--db", str(db), "--irrelevant", "--note", "not Iran"], env=env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "not-relevant"
    assert reviews(db) == [("Title 3", "not-relevant", "not Iran", "tester", 0.603, 0.5, "not-relevant")]
    pending = subprocess.run([*MONITOR, "review", "--db", str(db), "--list", "--format", "json"], env=env(),
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert [i["title"] for i in json.loads(pending.stdout)] == ["Title 4", "Title 2", "Title 1"]
    decisions = subprocess.run([*MONITOR, "review", "--db", str(db), "--decisions", "--format", "json"], env=env(),
                               capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert [d["note"] for d in json.loads(decisions.stdout)] == ["not Iran"]


def test_a_verdict_needs_an_id_and_review_needs_a_terminal(db: Path) -> None:
    no_tty = subprocess.run([*MONITOR, "review", "--db", str(db)], env=env(), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert no_tty.returncode == 2 and "needs a terminal" in no_tty.stderr
    unknown = subprocess.run([*MONITOR, "review", "nosuchid", "--db", str(db), "--relevant"], env=env(),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert unknown.returncode == 1 and "no article matches" in unknown.stderr
