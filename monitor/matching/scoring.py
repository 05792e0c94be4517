"""Score articles against topics: the one scoring function.

Ingest, rescore, evaluate and explain all call :meth:`TopicMatcher.score_articles`.
A topic's score for an article combines two signals:

* **embedding**: the cosine similarity between the article's best passage and the
  topic's closest exemplar, lowered by however much the article's closest negative
  exemplar is nearer still (so "North Korea fired a missile" loses to its negative);
* **lexical**: when the topic lists keywords, an article that mentions none of them
  is scored ``keyword_penalty`` lower (see :mod:`monitor.matching.keywords`).

A topic with a ``language`` is eligible only for articles in that language (or of
unknown language). An article is flagged for a topic when it is eligible and its score
reaches the topic's threshold. Across topics, articles are ranked by their best *margin*
(score minus threshold), which puts topics with different thresholds on one scale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.matching.embedding import Encoder
from monitor.matching.keywords import KeywordRule, scoring_text
from monitor.matching.topics import for_encoder
from monitor.models import Article, Match, Passage, Topic


@dataclass(frozen=True)
class ArticleText:
    """What scoring reads of an article besides its vectors."""

    text: str  # title and body (see keywords.scoring_text), for keyword evidence
    language: str | None = None


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


@dataclass(frozen=True)
class TopicScores:
    """Final scores of many articles against one topic, with the evidence behind them."""

    topic: Topic
    score: np.ndarray  # float64: embedding score, minus the keyword penalty where it applies
    embedding_score: np.ndarray
    best_seq: np.ndarray  # best passage's index within its article
    exemplar: np.ndarray  # closest exemplar's index
    eligible: np.ndarray  # bool: the topic's language rule allows the article
    keyword_hits: list[dict[str, int]]

    @property
    def margin(self) -> np.ndarray:
        """Score minus threshold, ``-inf`` where the article is not eligible: >= 0 means flagged."""
        return np.where(self.eligible, self.score - self.topic.threshold, -np.inf)

    @property
    def flagged(self) -> np.ndarray:
        """Articles flagged for this topic (bool)."""
        return self.eligible & (self.score >= self.topic.threshold)

    def flag(self, i: int, article_id: str, passage_seq: int) -> Flagged:
        """The evidence of article ``i`` as a :class:`Flagged` record (``passage_seq``: its best passage)."""
        return Flagged(
            article_id=article_id,
            topic=self.topic,
            score=float(self.score[i]),
            embedding_score=float(self.embedding_score[i]),
            exemplar_index=int(self.exemplar[i]),
            passage_seq=passage_seq,
            keyword_hits=self.keyword_hits[i],
        )


@dataclass(frozen=True)
class Flagged:
    """One flagged (article, topic) pair with its evidence, before its passage text is attached."""

    article_id: str
    topic: Topic
    score: float
    embedding_score: float
    exemplar_index: int
    passage_seq: int  # the best passage's stored seq
    keyword_hits: dict[str, int]


def language_allows(topic: Topic, language: str | None) -> bool:
    """The language rule: a topic with a language only matches articles in it (or of unknown language)."""
    return not (topic.language and language and topic.language != language)


class TopicMatcher:
    """Topic profiles with their exemplars embedded once, by the encoder that embeds the passages.

    Args:
        topics: the profiles.
        encoder: the encoder whose vector space the passages are in.
        strict: require every topic to have a threshold fitted for this encoder (evaluation and
            calibration pass False: they measure, or fit, thresholds for a new encoder).

    Raises:
        TopicConfigError: ``strict`` and a topic has no threshold for the encoder.
    """

    def __init__(self, topics: Sequence[Topic], encoder: Encoder, strict: bool = True) -> None:
        self.topics = for_encoder(topics, encoder.name, strict)
        self.model = encoder.name
        self.exemplar_vectors = [encoder.encode_queries(t.exemplars) for t in self.topics]
        self.negative_vectors = [encoder.encode_queries(t.negatives) for t in self.topics]
        self.keyword_rules = [KeywordRule(t.keywords, dict(t.keywords_by_language)) for t in self.topics]

    def passage_scores(self, vectors: np.ndarray, starts: np.ndarray) -> list[PassageScores]:
        """Embedding scores of many articles at once, one :class:`PassageScores` per topic.

        Args:
            vectors: unit passage vectors of all articles, article after article, ``(n, dim)``.
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

    def score_articles(
        self, vectors: np.ndarray, starts: np.ndarray, articles: Sequence[ArticleText]
    ) -> list[TopicScores]:
        """Score many articles against every topic: the one scoring function.

        Args:
            vectors: unit passage vectors, article after article.
            starts: index of each article's first passage.
            articles: each article's text and language, in the same order.

        Returns:
            One :class:`TopicScores` per topic (in topic order), each with one entry per article.
        """
        per_topic = self.passage_scores(vectors, starts)
        out: list[TopicScores] = []
        hits_cache: dict[tuple[object, ...], list[dict[str, int]]] = {}
        for topic, rule, scores in zip(self.topics, self.keyword_rules, per_topic, strict=True):
            if rule.key not in hits_cache:  # topics often share one keyword list
                hits_cache[rule.key] = [rule.hits(a.text, a.language) for a in articles]
            hits = hits_cache[rule.key]
            embedding = scores.score.astype(np.float64)
            applies = np.fromiter(
                (rule.applies(a.language) for a in articles), dtype=bool, count=len(articles)
            )
            named = np.fromiter((bool(h) for h in hits), dtype=bool, count=len(articles))
            # The penalty falls only where the topic has keywords for the article's language.
            final = np.where(applies & ~named, embedding - topic.keyword_penalty, embedding)
            eligible = np.fromiter(
                (language_allows(topic, a.language) for a in articles), dtype=bool, count=len(articles)
            )
            out.append(TopicScores(topic, final, embedding, scores.best_seq, scores.exemplar, eligible, hits))
        return out

    def make_match(self, flag: Flagged, passage: str) -> Match:
        """The :class:`Match` record of a flagged pair, given its best passage's text."""
        topic = flag.topic
        return Match(
            article_id=flag.article_id,
            topic_id=topic.topic_id,
            score=round(flag.score, 6),
            threshold=topic.threshold,
            best_passage_seq=flag.passage_seq,
            best_passage=passage,
            exemplar=topic.exemplars[flag.exemplar_index],
            model=self.model,
            embedding_score=round(flag.embedding_score, 6),
            keyword_hits=flag.keyword_hits,
        )

    def match(self, articles: Sequence[Article], passages: Sequence[Passage]) -> list[Match]:
        """Score articles from their embedded passages and keep the flagged (article, topic) pairs.

        Args:
            articles: the articles (their title and text give keyword evidence).
            passages: their embedded passages.

        Returns:
            A match per (article, topic) that is flagged.
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
        texts = [ArticleText(scoring_text(a.title, a.text), a.language) for a in scored]
        table = self.score_articles(vectors, starts, texts)
        matches: list[Match] = []
        for i, (article, group) in enumerate(zip(scored, groups, strict=True)):
            for scores in table:
                if scores.flagged[i]:
                    best = group[int(scores.best_seq[i])]
                    matches.append(self.make_match(scores.flag(i, article.article_id, best.seq), best.text))
        return matches
