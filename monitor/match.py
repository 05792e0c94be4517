"""Score articles against topics and decide which ones to flag.

A topic's score for an article combines two signals:

* **embedding**: the cosine similarity between the article's best passage and the
  topic's closest exemplar, lowered by however much the article's closest negative
  exemplar is nearer still (so "North Korea fired a missile" loses to its negative);
* **lexical**: when the topic lists keywords, an article that mentions none of them
  is scored ``keyword_penalty`` lower.

An article is flagged for a topic when its score reaches the topic's threshold.
Across topics, articles are ranked by their best *margin* (score minus threshold),
which puts topics with different thresholds on one scale.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.embed import Embedder
from monitor.models import Article, Match, Passage, Topic


@dataclass(frozen=True)
class TopicScore:
    """An article's score against one topic, with the evidence behind it."""

    topic_id: str
    score: float
    embedding_score: float
    threshold: float
    best_passage_seq: int
    exemplar_index: int
    keyword_hits: dict[str, int] = field(default_factory=dict)

    @property
    def margin(self) -> float:
        """Score minus threshold: >= 0 means flagged; comparable across topics."""
        return self.score - self.threshold


def keyword_pattern(keywords: Sequence[str]) -> str:
    """A case-insensitive whole-word pattern for a keyword list.

    The pattern is valid both for Python's ``re`` and for DuckDB's RE2 functions,
    so scoring and rescoring count the same hits.
    """
    alternatives = "|".join(re.escape(k.lower()) for k in sorted(keywords, key=len, reverse=True))
    return rf"(?i)\b(?:{alternatives})\b"


@dataclass(frozen=True)
class PassageScores:
    """Embedding scores of many articles against one topic (one entry per article)."""

    best: np.ndarray  # best passage's cosine to the closest exemplar
    best_seq: np.ndarray  # index of that passage within its article
    exemplar: np.ndarray  # index of that exemplar
    negative: np.ndarray  # best passage cosine to the closest negative (-1 without negatives)

    @property
    def score(self) -> np.ndarray:
        """Embedding score with the negative-exemplar margin applied."""
        return self.best - np.maximum(self.negative - self.best, 0.0)


class TopicMatcher:
    """Topic profiles with their exemplars embedded once.

    Args:
        topics: the profiles.
        embedder: the model that also embedded the passages.
    """

    def __init__(self, topics: Sequence[Topic], embedder: Embedder) -> None:
        self.topics = list(topics)
        self.model = embedder.name
        self.exemplar_vectors = [embedder.encode(t.exemplars) for t in self.topics]
        self.negative_vectors = [embedder.encode(t.negatives) for t in self.topics]
        self._patterns = [
            re.compile(keyword_pattern(t.keywords)) if t.keywords else None for t in self.topics
        ]

    def passage_scores(self, vectors: np.ndarray, starts: np.ndarray) -> list[PassageScores]:
        """Embedding scores of many articles at once, one :class:`PassageScores` per topic.

        Args:
            vectors: unit passage vectors of all articles, article after article, ``(n, 384)``.
            starts: index of each article's first passage in ``vectors`` (ascending).

        Returns:
            Per-topic arrays with one entry per article.
        """
        ends = np.append(starts[1:], len(vectors))
        owner = np.repeat(np.arange(len(starts)), ends - starts)
        results: list[PassageScores] = []
        for pos, neg in zip(self.exemplar_vectors, self.negative_vectors, strict=True):
            sims = vectors @ pos.T
            per_passage = sims.max(axis=1)
            # Best passage per article: sort by (article, -score) and take each group's first.
            order = np.lexsort((-per_passage, owner))
            first = order[starts]
            best_neg = (
                np.maximum.reduceat((vectors @ neg.T).max(axis=1), starts)
                if len(neg)
                else np.full(len(starts), -1.0, dtype=np.float32)
            )
            results.append(
                PassageScores(
                    best=per_passage[first],
                    best_seq=first - starts,
                    exemplar=sims[first].argmax(axis=1),
                    negative=best_neg,
                )
            )
        return results

    def keyword_hits(self, text: str) -> list[dict[str, int]]:
        """Count each topic's keywords in a text (case-insensitive, whole words)."""
        hits: list[dict[str, int]] = []
        for pattern in self._patterns:
            counts: dict[str, int] = defaultdict(int)
            if pattern is not None:
                for found in pattern.findall(text):
                    counts[found.lower()] += 1
            hits.append(dict(counts))
        return hits

    def combine(self, topic: Topic, embedding_score: float, has_keyword: bool) -> float:
        """Final score of one topic from its embedding score and keyword evidence."""
        if topic.keywords and not has_keyword:
            return embedding_score - topic.keyword_penalty
        return embedding_score

    def score_articles(
        self, vectors: np.ndarray, starts: np.ndarray, texts: Sequence[str]
    ) -> list[list[TopicScore]]:
        """Score many articles against every topic.

        Args:
            vectors: unit passage vectors, article after article.
            starts: index of each article's first passage.
            texts: each article's title and text, for keyword evidence.

        Returns:
            For each article, one :class:`TopicScore` per topic (in topic order).
        """
        per_topic = self.passage_scores(vectors, starts)
        out: list[list[TopicScore]] = []
        for i, text in enumerate(texts):
            hits = self.keyword_hits(text)
            row: list[TopicScore] = []
            for t, (topic, scores) in enumerate(zip(self.topics, per_topic, strict=True)):
                emb = float(scores.score[i])
                row.append(
                    TopicScore(
                        topic_id=topic.topic_id,
                        score=self.combine(topic, emb, bool(hits[t])),
                        embedding_score=emb,
                        threshold=topic.threshold,
                        best_passage_seq=int(scores.best_seq[i]),
                        exemplar_index=int(scores.exemplar[i]),
                        keyword_hits=hits[t],
                    )
                )
            out.append(row)
        return out

    def score(self, vectors: np.ndarray, text: str = "") -> list[TopicScore]:
        """Score one article, given its passage vectors and text, against every topic."""
        return self.score_articles(vectors, np.array([0]), [text])[0]

    def match(self, articles: Sequence[Article], passages: Sequence[Passage]) -> list[Match]:
        """Score articles from their embedded passages and keep scores over threshold.

        Args:
            articles: the articles (their title and text give keyword evidence).
            passages: their embedded passages.

        Returns:
            A match per (article, topic) whose score reaches the topic's threshold.
            A topic with a ``language`` only matches articles in that language.
        """
        by_article: dict[str, list[Passage]] = defaultdict(list)
        for passage in passages:
            by_article[passage.article_id].append(passage)
        scored = [a for a in articles if by_article.get(a.article_id)]
        if not scored:
            return []
        groups = [sorted(by_article[a.article_id], key=lambda p: p.seq) for a in scored]
        vectors = np.stack([p.vector for group in groups for p in group])
        starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
        texts = [f"{a.title or ''}\n{a.text}" for a in scored]
        matches: list[Match] = []
        for article, group, row in zip(
            scored, groups, self.score_articles(vectors, starts, texts), strict=True
        ):
            for topic, ts in zip(self.topics, row, strict=True):
                if ts.margin < 0 or (
                    topic.language and article.language and topic.language != article.language
                ):
                    continue
                best = group[ts.best_passage_seq]
                matches.append(
                    Match(
                        article_id=article.article_id,
                        topic_id=topic.topic_id,
                        score=round(ts.score, 6),
                        threshold=topic.threshold,
                        best_passage_seq=best.seq,
                        best_passage=best.text,
                        exemplar=topic.exemplars[ts.exemplar_index],
                        model=self.model,
                        embedding_score=round(ts.embedding_score, 6),
                        keyword_hits=ts.keyword_hits,
                    )
                )
        return matches
