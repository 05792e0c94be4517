"""Feed shards: which worker polls which feed, by a stable hash of the feed's id."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.models import Feed

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """Raised for a shard spec that is not ``K/N`` with ``1 <= K <= N``."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as written on the command line: ``--shard 2/3``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ShardError(f"shard {self.index}/{self.count}: K must be between 1 and N")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, source_id: str) -> bool:
        """Whether this shard polls the feed with this id."""
        return shard_of(source_id, self.count) == self.index

    def select(self, feeds: Sequence[Feed]) -> list[Feed]:
        """The feeds this shard polls, in their order."""
        return [f for f in feeds if self.owns(f.source_id)]


ALL = Shard(1, 1)


def shard_of(source_id: str, count: int) -> int:
    """The 1-based shard of ``count`` that owns a feed.

    The hash is SHA-256 of the feed's id (itself from its URL), not Python's ``hash``, which is
    salted per process: every worker, on every machine and every restart, computes the same
    owner, so no two workers of one ``N`` poll the same feed and none is left out.
    """
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(spec: str | None) -> Shard:
    """``"K/N"`` as a :class:`Shard`; None or empty means every feed (``1/1``).

    Raises:
        ShardError: the spec is malformed, or K is outside 1..N.
    """
    if spec is None or not spec.strip():
        return ALL
    found = _SPEC.fullmatch(spec)
    if not found:
        raise ShardError(f"shard {spec!r}: expected K/N, for example 1/2")
    return Shard(int(found.group(1)), int(found.group(2)))
