"""Feed shards: every feed has exactly one owner, the same in every process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.ingest.shards import ALL, Shard, ShardError, parse_shard, shard_of
from monitor.ingest.urls import stable_id
from monitor.models import Feed

ids = st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=50, unique=True)


@given(ids, st.integers(min_value=1, max_value=32))
def test_every_feed_is_owned_by_exactly_one_shard(source_ids: list[str], count: int) -> None:
    for source_id in source_ids:
        owners = [k for k in range(1, count + 1) if Shard(k, count).owns(source_id)]
        assert owners == [shard_of(source_id, count)]


def test_shards_partition_a_feed_list_and_keep_its_order() -> None:
    feeds = [Feed(name=f"f{n}", url=f"https://news{n}.example/rss") for n in range(200)]
    parts = [Shard(k, 3).select(feeds) for k in (1, 2, 3)]
    assert sorted(f.url for part in parts for f in part) == sorted(f.url for f in feeds)
    assert all(part == sorted(part, key=feeds.index) for part in parts)
    # A hash split, not a round robin by position: each part gets a fair share.
    assert all(45 <= len(part) <= 90 for part in parts), [len(p) for p in parts]
    assert ALL.select(feeds) == feeds


def test_the_owner_does_not_depend_on_the_process_or_its_hash_seed() -> None:
    source_ids = [stable_id(f"https://news{n}.example/rss") for n in range(50)]
    here = [shard_of(s, 7) for s in source_ids]
    code = f"from monitor.ingest.shards import shard_of; print([shard_of(s, 7) for s in {source_ids!r}])"
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout  # fmt: skip
        assert out.strip() == str(here)


@pytest.mark.parametrize(
    ("spec", "shard"), [(None, ALL), ("", ALL), ("1/1", ALL), ("2/3", Shard(2, 3)), (" 3 / 4 ", Shard(3, 4))]
)
def test_specs_parse(spec: str | None, shard: Shard) -> None:
    assert parse_shard(spec) == shard


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "2", "a/b", "1/2/3", "-1/2"])
def test_bad_specs_are_named_errors(spec: str) -> None:
    with pytest.raises(ShardError):
        parse_shard(spec)
