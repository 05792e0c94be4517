"""Alert delivery to a JSON-lines file and the console."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from monitor.alerts.channels import Delivery, alert_record, console_line, deliver_to_file
from monitor.models import Alert


def make_alert(n: int, **overrides: object) -> Alert:
    fields: dict[str, object] = {
        "alert_id": f"alert-{n:04d}",
        "article_id": f"{n:016x}",
        "topic_id": "iran-missiles",
        "topic_name": "Iran's ballistic-missile programme",
        "score": 0.612345678,
        "title": f"Story number {n} \u2014 caf\u00e9",
        "url": f"https://news.example.com/story/{n}",
        "site_name": "Example News",
        "published_at": datetime(2026, 11, 21, 7, 30, tzinfo=UTC),
        "passage": f"Passage {n}: the Guards unveiled a missile.\nSecond line.",
    }
    fields.update(overrides)
    return Alert(**fields)  # type: ignore[arg-type]


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_writes_one_json_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "out" / "nested" / "alerts.jsonl"
    alerts = [make_alert(1), make_alert(2)]
    delivery = deliver_to_file(alerts, path, echo=None)
    assert delivery.delivered == ["alert-0001", "alert-0002"]
    assert delivery.failed == {}
    assert delivery.channel == f"file:{path}"
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    assert raw.count("\n") == 2
    assert "caf\u00e9" in raw  # written as UTF-8, not \u escapes
    records = read_lines(path)
    assert [r["alert_id"] for r in records] == ["alert-0001", "alert-0002"]
    first = records[0]
    assert first["topic"] == "Iran's ballistic-missile programme"
    assert first["topic_id"] == "iran-missiles"
    assert first["score"] == 0.6123
    assert first["title"] == "Story number 1 \u2014 caf\u00e9"
    assert first["url"] == "https://news.example.com/story/1"
    assert first["passage"] == "Passage 1: the Guards unveiled a missile.\nSecond line."
    assert first["published_at"] == "2026-11-21T07:30:00+00:00"
    assert first["site_name"] == "Example News"
    assert first["article_id"] == f"{1:016x}"


def test_appends_on_second_call(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    deliver_to_file([make_alert(1)], path, echo=None)
    second = deliver_to_file([make_alert(2), make_alert(3)], path, echo=None)
    assert second.delivered == ["alert-0002", "alert-0003"]
    assert [r["alert_id"] for r in read_lines(path)] == ["alert-0001", "alert-0002", "alert-0003"]


def test_echo_receives_console_lines(tmp_path: Path) -> None:
    lines: list[str] = []
    alerts = [make_alert(1), make_alert(2, title=None, site_name=None)]
    deliver_to_file(alerts, tmp_path / "alerts.jsonl", echo=lines.append)
    assert lines == [console_line(a) for a in alerts]
    assert lines[0] == (
        "ALERT [iran-missiles] 0.612 Story number 1 \u2014 caf\u00e9 (Example News) <https://news.example.com/story/1>"
    )
    # without a title the URL stands in, and no outlet is shown
    assert (
        lines[1]
        == "ALERT [iran-missiles] 0.612 https://news.example.com/story/2 <https://news.example.com/story/2>"
    )


def test_default_echo_prints(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    deliver_to_file([make_alert(7)], tmp_path / "alerts.jsonl")
    assert "ALERT [iran-missiles]" in capsys.readouterr().out


def test_no_alerts_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    delivery = deliver_to_file([], path, echo=None)
    assert delivery == Delivery(channel=f"file:{path}")
    assert not path.parent.exists()


def test_dead_sink_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("I am a file", encoding="utf-8")
    path = blocker / "alerts.jsonl"
    lines: list[str] = []
    alerts = [make_alert(1), make_alert(2)]
    delivery = deliver_to_file(alerts, path, echo=lines.append)
    assert delivery.delivered == []
    assert set(delivery.failed) == {"alert-0001", "alert-0002"}
    for error in delivery.failed.values():
        assert error
        assert "Error" in error.split(":", 1)[0]  # exception type name first, e.g. FileExistsError
        assert "not-a-dir" in error
    assert lines == []
    assert blocker.read_text(encoding="utf-8") == "I am a file"


def test_dead_sink_path_is_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.mkdir()
    delivery = deliver_to_file([make_alert(1)], path, echo=None)
    assert delivery.delivered == []
    assert list(delivery.failed) == ["alert-0001"]
    assert "IsADirectoryError" in delivery.failed["alert-0001"]


def test_alert_record_without_date() -> None:
    record = alert_record(make_alert(3, published_at=None, site_name=None, score=0.99999))
    assert record["published_at"] is None
    assert record["site_name"] is None
    assert record["score"] == 1.0
    json.dumps(record)
