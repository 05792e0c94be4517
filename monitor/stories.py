"""One story per event: syndicated and lightly edited copies found by MinHash over word shingles.

Wire copies carried by several outlets differ in headline, boilerplate, trimmed paragraphs
and small edits, but share most of their 5-word shingles. Each article gets a 128-value
MinHash signature (kept in DuckDB, so clustering survives restarts); two articles belong to
one story when the estimated *containment* of the shorter in the longer is high enough,
which tolerates one copy being a trimmed version of the other.

Everything here is a plain function of its inputs; the pipeline reads the stored state
these decisions need and hands the results to the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from monitor.models import Alias, Article, StoryStart

SHINGLE_WORDS = 5
PERMUTATIONS = 128
CONTAINMENT_THRESHOLD = 0.5
# Syndicated copies arrive within days of each other; older stories are not searched.
STORY_WINDOW = timedelta(days=14)
# One 64-bit seed per permutation; a shingle's value under permutation i is
# splitmix64(hash ^ seed_i), a well-mixed hash, so the minima of different permutations
# are independent (a plain a*h+b without a full 128-bit product is nearly monotonic in h).
_SEEDS = np.random.default_rng(20261129).integers(0, 2**63, size=PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Signature:
    """An article's MinHash signature and how many distinct shingles it summarises."""

    article_id: str
    shingles: int
    values: np.ndarray  # uint32[PERMUTATIONS]


def normalise(text: str) -> list[str]:
    """Lower-cased word tokens, the unit of comparison for duplicates."""
    return [w.lower() for w in _WORD.findall(text)]


def text_hash(text: str) -> str:
    """Hash of the normalised text: equal for copies differing only in case, spacing, punctuation."""
    return hashlib.sha256(" ".join(normalise(text)).encode("utf-8")).hexdigest()


def signature(article_id: str, text: str) -> Signature:
    """MinHash signature of a text's word 5-shingles.

    Args:
        article_id: the article the text belongs to.
        text: the article text (title excluded: syndicators rewrite headlines).

    Returns:
        The signature; an empty text gets all-max values and 0 shingles.
    """
    words = normalise(text)
    grams = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(len(words) - SHINGLE_WORDS + 1, 1))}
    grams.discard("")
    if not grams:
        return Signature(article_id, 0, np.full(PERMUTATIONS, np.iinfo(np.uint32).max, dtype=np.uint32))
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams),
        dtype=np.uint64,
        count=len(grams),
    )
    permuted = _splitmix64(hashes[:, None] ^ _SEEDS[None, :])
    return Signature(article_id, len(grams), (permuted.min(axis=0) >> np.uint64(32)).astype(np.uint32))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (multiplication wraps modulo 2**64)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def containment(a: Signature, b: Signature) -> float:
    """Estimated share of the smaller article's shingles found in the other one."""
    if not a.shingles or not b.shingles:
        return 0.0
    jaccard = float(np.mean(a.values == b.values))
    shared = jaccard * (a.shingles + b.shingles) / (1 + jaccard)
    return min(shared / min(a.shingles, b.shingles), 1.0)


def is_duplicate(a: Signature, b: Signature, threshold: float = CONTAINMENT_THRESHOLD) -> bool:
    """Tell whether two articles are copies of one story."""
    return containment(a, b) >= threshold


def assign(
    new: Sequence[Signature], known: Sequence[tuple[Signature, str]], threshold: float = CONTAINMENT_THRESHOLD
) -> dict[str, str]:
    """Give each new article a story: an existing one it duplicates, or a story of its own.

    Args:
        new: signatures of articles without a story, in arrival order.
        known: signatures of stored articles with their story ids.
        threshold: containment from which two articles are one story.

    Returns:
        ``{article_id: story_id}`` for the new articles. A new story's id is the id of
        its first article, so ids are stable once assigned.
    """
    pool_sigs = [s for s, _ in known]
    pool_story = [story for _, story in known]
    # One matrix with room for the new rows: appending row by row would copy it each time.
    matrix = np.empty((len(pool_sigs) + len(new), PERMUTATIONS), np.uint32)
    for row, known_sig in enumerate(pool_sigs):
        matrix[row] = known_sig.values
    filled = len(pool_sigs)
    result: dict[str, str] = {}
    for sig in new:
        story = sig.article_id
        if filled and sig.shingles:
            agreement = (matrix[:filled] == sig.values).mean(axis=1)
            for i in np.argsort(-agreement)[:5]:
                if agreement[i] > 0 and is_duplicate(sig, pool_sigs[int(i)], threshold):
                    story = pool_story[int(i)]
                    break
        result[sig.article_id] = story
        pool_sigs.append(sig)
        pool_story.append(story)
        matrix[filled] = sig.values
        filled += 1
    return result


def split_duplicates(
    articles: Sequence[Article], stored_ids: set[str], stored_by_text: dict[str, str]
) -> tuple[list[Article], list[Alias]]:
    """Separate new articles from copies of stored ones (same canonical URL or same text).

    Args:
        articles: a batch of extracted articles.
        stored_ids: ids among them that are stored already.
        stored_by_text: stored article id per normalised-text hash.

    Returns:
        The articles to store, and alias records for the others (and for feed URLs
        whose page named another canonical URL). Copies within the batch count too:
        the first one is stored, later ones become aliases.
    """
    by_id = set(stored_ids)
    by_text = dict(stored_by_text)
    fresh: list[Article] = []
    aliases: list[Alias] = []
    for article in articles:
        if article.article_id in by_id:
            target = article.article_id
        elif article.text_hash and article.text_hash in by_text:
            target = by_text[article.text_hash]
            aliases.append(Alias(article.article_id, target, article.url, "same-text"))
        else:
            fresh.append(article)
            target = article.article_id
            if article.text_hash:
                by_text[article.text_hash] = target
            by_id.add(target)
        if article.entry_id and article.entry_id != target:
            aliases.append(Alias(article.entry_id, target, article.url, "canonical-link"))
    return fresh, aliases


def new_stories(articles: Sequence[Article], story_of: dict[str, str]) -> list[StoryStart]:
    """Stories started by these articles: those assigned a story of their own."""
    return [
        StoryStart(a.article_id, a.article_id, a.source_id, a.title)
        for a in articles
        if story_of.get(a.article_id) == a.article_id
    ]
