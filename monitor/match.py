"""Score articles against topics and decide which ones to flag."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.embed import Embedder
from monitor.models import Match, Passage, Topic


@dataclass(frozen=True)
class TopicScore:
    """An article's score against one topic, with the evidence behind it."""

    topic_id: str
    score: float
    best_passage_seq: int
    exemplar_index: int


class TopicMatcher:
    """Topic profiles with their exemplars embedded once.

    Args:
        topics: the profiles.
        embedder: the model that also embedded the passages.
    """

    def __init__(self, topics: Sequence[Topic], embedder: Embedder) -> None:
        self.topics = list(topics)
        self.model = embedder.name
        self._exemplars = [embedder.encode(t.exemplars) for t in self.topics]
        self._negatives = [embedder.encode(t.negatives) for t in self.topics]

    def score(self, vectors: np.ndarray) -> list[TopicScore]:
        """Score one article, given its passage vectors, against every topic.

        The article's score is its best passage's cosine to the closest exemplar,
        lowered by how far its best passage's cosine to a negative exemplar exceeds
        that: an article that reads more like "North Korea fired a missile" than like
        any exemplar drops below the threshold.

        Args:
            vectors: unit vectors of the article's passages, shape ``(n, 384)``.

        Returns:
            One score per topic, in topic order.
        """
        scores: list[TopicScore] = []
        for topic, pos, neg in zip(self.topics, self._exemplars, self._negatives, strict=True):
            sims = vectors @ pos.T
            best_per_passage = sims.max(axis=1)
            seq = int(best_per_passage.argmax())
            best = float(best_per_passage[seq])
            penalty = 0.0
            if len(neg):
                penalty = max(float((vectors @ neg.T).max()) - best, 0.0)
            scores.append(
                TopicScore(
                    topic_id=topic.topic_id,
                    score=best - penalty,
                    best_passage_seq=seq,
                    exemplar_index=int(sims[seq].argmax()),
                )
            )
        return scores

    def match(self, passages: Sequence[Passage]) -> list[Match]:
        """Score the articles these passages belong to and keep scores over threshold.

        Args:
            passages: embedded passages of one or more articles.

        Returns:
            A match per (article, topic) whose score reaches the topic's threshold.
        """
        by_article: dict[str, list[Passage]] = defaultdict(list)
        for passage in passages:
            by_article[passage.article_id].append(passage)
        topics = {t.topic_id: t for t in self.topics}
        matches: list[Match] = []
        for article_id, items in by_article.items():
            items.sort(key=lambda p: p.seq)
            vectors = np.stack([p.vector for p in items])
            for ts in self.score(vectors):
                topic = topics[ts.topic_id]
                if ts.score >= topic.threshold:
                    best = items[ts.best_passage_seq]
                    matches.append(
                        Match(
                            article_id=article_id,
                            topic_id=topic.topic_id,
                            score=round(ts.score, 6),
                            threshold=topic.threshold,
                            best_passage_seq=best.seq,
                            best_passage=best.text,
                            exemplar=topic.exemplars[ts.exemplar_index],
                            model=self.model,
                        )
                    )
        return matches
