"""``monitor extract`` on saved pages (plain and gzipped) and on a local URL."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from monitor import cli
from tests.conftest import REPO

PAGE = REPO / "monitor/demo/sample_site/articles/vienna-talks-resume-jcpoa.html"
FIELDS = {"input", "url", "canonical_url", "title", "author", "published_at", "date_method", "language",
          "text", "word_count", "method"}  # fmt: skip


def test_extract_saved_pages_as_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gz = tmp_path / "page.html.gz"
    gz.write_bytes(gzip.compress(PAGE.read_bytes()))
    url = "https://news.example.org/a/vienna.html?utm_source=rss#top"
    assert cli.main(["extract", "--format", "jsonl", "--url", url, str(PAGE), str(gz)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 2
    for rec in records:
        assert set(rec) >= FIELDS
        assert rec["canonical_url"] == "https://news.example.org/a/vienna.html"
        assert rec["language"] == "en" and rec["word_count"] > 300
        assert rec["method"] == "trafilatura-precision" and rec["date_method"] == "page-metadata"
    assert records[0]["text"] == records[1]["text"]


def test_extract_reports_unreadable_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body><p>short</p></body></html>", encoding="utf-8")
    assert cli.main(["extract", str(tmp_path / "missing.html"), str(empty)]) == 1
    records = json.loads(capsys.readouterr().out)
    assert "cannot read" in records[0]["error"] and "need 200" in records[1]["error"]


def test_extract_fetches_a_url_through_the_guard(
    scripted_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = scripted_server.add("/story.html", 200, PAGE.read_bytes(), Content_Type="text/html; charset=utf-8")
    monkeypatch.setenv("MONITOR_FETCH_ALLOW", "127.0.0.1")
    assert cli.main(["extract", url]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["url"] == url and rec["title"].startswith("Nuclear negotiators return to Vienna")
    monkeypatch.delenv("MONITOR_FETCH_ALLOW")
    assert cli.main(["extract", url]) == 1
    assert "refused" in json.loads(capsys.readouterr().out)["error"]
