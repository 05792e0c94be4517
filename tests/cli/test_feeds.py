"""``monitor feeds check``: saved feeds through the flow's parsing path; nothing crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor import cli
from tests.conftest import SHARED

GOOD = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>A</title><link>http://example.org/a</link></item></channel></rss>"""
RECOVERED = GOOD.replace(b"<title>A</title>", b"<title>AT&T</title>")
BOMB = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel><title>&b;</title></channel></rss>"""


def test_feeds_check_counts_each_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.xml").write_bytes(GOOD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "recovered.xml").write_bytes(RECOVERED)
    (tmp_path / "bomb.xml").write_bytes(BOMB)
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "empty.xml").write_bytes(b"")
    assert cli.main(["feeds", "check", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result == {"files": 5, "ok": 1, "bozo": 1, "failed": 3, "crashed": 0}


def test_feeds_check_rejects_a_missing_directory(tmp_path: Path) -> None:
    assert cli.main(["feeds", "check", str(tmp_path / "none")]) == 2


@pytest.mark.skipif(not (SHARED / "corpora/feeds").exists(), reason="shared feed corpus not present")
def test_real_ill_formed_feeds_never_crash_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["feeds", "check", str(SHARED / "corpora/feeds")]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["crashed"] == 0 and result["files"] > 2000
    assert result["ok"] + result["bozo"] > 0.8 * result["files"]
