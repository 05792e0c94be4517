"""Recompute every match from stored passage embeddings, without re-embedding.

Run after editing topics.yaml: new exemplars, negatives, keywords or thresholds
take effect on the whole archive in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb
import numpy as np

from monitor import store
from monitor.match import TopicMatcher, keyword_pattern
from monitor.models import Match
from monitor.store import rescoring


def rescore(
    con: duckdb.DuckDBPyConnection,
    matcher: TopicMatcher,
    alert: bool = False,
    chunk_articles: int = 20_000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Score every stored article against the matcher's topics and replace the matches.

    Args:
        con: a read-write connection.
        matcher: topics with embedded exemplars (same model as the stored passages).
        alert: queue alerts for articles that newly match.
        chunk_articles: articles scored per chunk (bounds memory).
        progress: receives a line per chunk.

    Returns:
        ``articles``, ``passages``, ``matches``, ``added``, ``updated``, ``removed``,
        ``alerts`` and ``seconds``.
    """
    started = time.monotonic()
    topics = matcher.topics
    store.save_topics(con, topics)
    with_keyword = [
        rescoring.articles_matching(con, keyword_pattern(t.keywords)) if t.keywords else None for t in topics
    ]
    found: list[tuple[str, int, int, float, float, int]] = []  # article, topic, seq, score, emb, exemplar
    articles = passages = 0
    for ids, starts, vectors, seqs in rescoring.iter_passage_vectors(con, chunk_articles):
        articles += len(ids)
        passages += len(vectors)
        for t, (topic, scores) in enumerate(
            zip(topics, matcher.passage_scores(vectors, starts), strict=True)
        ):
            final = scores.score.astype(np.float64)
            keyword_set = with_keyword[t]
            if keyword_set is not None:
                has = np.fromiter((aid in keyword_set for aid in ids), dtype=bool, count=len(ids))
                final = np.where(has, final, final - topic.keyword_penalty)
            for i in np.flatnonzero(final >= topic.threshold):
                found.append(
                    (ids[i], t, int(seqs[starts[i] + scores.best_seq[i]]), float(final[i]),
                     float(scores.score[i]), int(scores.exemplar[i]))
                )  # fmt: skip
        if progress:
            progress(f"rescored {articles} articles ({passages} passages), {len(found)} matches so far")
    matches = _evidence(con, matcher, found)
    counts = rescoring.replace_matches(con, matches, alert)
    return {
        "articles": articles,
        "passages": passages,
        "matches": len(matches),
        **counts,
        "seconds": round(time.monotonic() - started, 2),
    }


def _evidence(
    con: duckdb.DuckDBPyConnection,
    matcher: TopicMatcher,
    found: list[tuple[str, int, int, float, float, int]],
) -> list[Match]:
    """Attach passage text and keyword hits to the (few) matches, and apply topic languages."""
    texts = rescoring.article_texts(con, sorted({f[0] for f in found}))
    passages = rescoring.passage_texts(con, sorted({(f[0], f[2]) for f in found}))
    matches: list[Match] = []
    for article_id, t, seq, score, emb, exemplar in found:
        topic = matcher.topics[t]
        text, language = texts[article_id]
        if topic.language and language and topic.language != language:
            continue
        matches.append(
            Match(
                article_id=article_id,
                topic_id=topic.topic_id,
                score=round(score, 6),
                threshold=topic.threshold,
                best_passage_seq=seq,
                best_passage=passages[(article_id, seq)],
                exemplar=topic.exemplars[exemplar],
                model=matcher.model,
                embedding_score=round(emb, 6),
                keyword_hits=matcher.keyword_hits(text)[t],
            )
        )
    return matches
