"""The feed list: a broken file stops the run, a broken entry is rejected alone with its reason."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from monitor.ingest.feedlist import FeedListError, load_feeds
from monitor.models import Feed
from tests.conftest import REPO


def write(tmp_path: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_load_feeds_valid_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        feeds:
          - name: Example World
            url: https://news.example.com/world.xml
            language: en
            tags: [world, wire]
          - name: "  Exemple Monde  "
            url: http://exemple.example/rss
        """,
    )
    loaded = load_feeds(path)
    assert loaded.feeds == (
        Feed(
            name="Example World",
            url="https://news.example.com/world.xml",
            language="en",
            tags=("world", "wire"),
        ),
        Feed(name="Exemple Monde", url="http://exemple.example/rss", language=None, tags=()),
    )
    assert loaded.rejected == ()
    assert len({f.source_id for f in loaded.feeds}) == 2


def test_repo_feeds_yaml_loads_without_rejections() -> None:
    loaded = load_feeds(REPO / "feeds.yaml")
    assert loaded.rejected == ()
    assert len(loaded.feeds) >= 15
    assert all(f.url.startswith("https://") for f in loaded.feeds)
    assert len({f.url for f in loaded.feeds}) == len(loaded.feeds)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FeedListError, match="not found") as info:
        load_feeds(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds: [name: x\n  - : :", "not valid YAML"),
        ("feeds:\n  - name: a\n    url: 'https://a.example/\n", "not valid YAML"),
        ("", "top-level 'feeds:' list"),
        ("- name: a\n  url: https://a.example/\n", "top-level 'feeds:' list"),
        ("sources:\n  - name: a\n    url: https://a.example/\n", "top-level 'feeds:' list"),
        ("feeds: https://a.example/\n", "top-level 'feeds:' list"),
    ],
)
def test_a_broken_file_stops_everything(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FeedListError, match=re.escape(message)) as info:
        load_feeds(path)
    assert str(path) in str(info.value)


GOOD = "  - name: Good\n    url: https://good.example/feed.xml\n"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - name: a\n    url: https://a.example/\n    colour: red\n", "unknown key"),
        ("  - name: a\n    url: ftp://a.example/feed\n", "not an http(s) URL"),
        ("  - name: a\n    url: file:///etc/passwd\n", "not an http(s) URL"),
        ("  - name: a\n    url: a.example/feed\n", "not an http(s) URL"),
        ("  - name: a\n    url: 'http://[oops/feed'\n", "malformed URL"),
        ("  - name: a\n    url: 42\n", "'url' must be a string"),
        ("  - url: https://a.example/\n", "'name'"),
        ("  - name: '   '\n    url: https://a.example/\n", "'name'"),
        ("  - https://a.example/\n", "expected a mapping"),
        ("  - name: a\n    url: https://a.example/\n    tags: world\n", "'tags'"),
        ("  - name: a\n    url: https://a.example/\n    language: [en]\n", "'language'"),
        ("  - name: Again\n    url: https://GOOD.example/feed.xml?utm_source=x\n", "duplicate of feed #1"),
    ],
)
def test_a_bad_entry_is_rejected_and_the_others_load(tmp_path: Path, entry: str, message: str) -> None:
    path = write(
        tmp_path, "feeds:\n" + GOOD + entry + "  - name: Also good\n    url: https://also.example/rss\n"
    )
    loaded = load_feeds(path)
    assert [f.name for f in loaded.feeds] == ["Good", "Also good"]
    assert len(loaded.rejected) == 1
    rejected = loaded.rejected[0]
    assert rejected.position == 2
    assert message in rejected.error
    assert rejected.error.startswith("feed #2")
    assert rejected.source_id not in {f.source_id for f in loaded.feeds}


def test_rejected_entries_keep_their_name_and_url(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n" + GOOD + "  - name: Passwords\n    url: file:///etc/passwd\n")
    (rejected,) = load_feeds(path).rejected
    assert (rejected.name, rejected.url) == ("Passwords", "file:///etc/passwd")
    assert "feed #2 (Passwords)" in rejected.error
