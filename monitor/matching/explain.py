"""Why an article is (or is not) flagged: its stored vectors scored live against the topics in force."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np

from monitor.matching.keywords import scoring_text
from monitor.matching.routing import Routing
from monitor.matching.scoring import ArticleText, TopicMatcher
from monitor.store import passages as stored_passages


@dataclass(frozen=True)
class TopicVerdict:
    """One topic's live score of a stored article, with the rules that were applied."""

    topic_id: str
    score: float
    embedding_score: float
    threshold: float
    flagged: bool
    language_rule: str  # what the topic's language rule decided
    keyword_rule: str  # what the keyword rule decided
    exemplar: str
    passage_seq: int
    passage: str
    encoder: str = ""  # the encoder whose vectors were scored


def explain_stored(
    con: duckdb.DuckDBPyConnection, matchers: TopicMatcher | Routing, article: dict[str, object]
) -> list[TopicVerdict] | str:
    """Score a stored article with the scoring function ingest uses.

    Args:
        con: a connection.
        matchers: the topics in force with the configured encoder (or the routing: the matcher of the
            encoder that embedded the article is used).
        article: the article row (``article_id``, ``title``, ``text``, ``language``).

    Returns:
        One verdict per topic, or a sentence saying why the article cannot be scored live
        (no passages, or passages from another encoder).
    """
    seqs, texts, vectors, models = stored_passages.article_vectors(con, str(article["article_id"]))
    if not seqs:
        return "no stored passages"
    names = matchers.names if isinstance(matchers, Routing) else [matchers.model]
    if len(set(models)) != 1 or models[0] not in names:
        return f"its passages were embedded with {', '.join(sorted(set(models)))}, not {' or '.join(names)}"
    matcher = matchers.matcher(models[0]) if isinstance(matchers, Routing) else matchers
    found_language = article.get("language")
    language = found_language if isinstance(found_language, str) else None
    text = ArticleText(scoring_text(article.get("title"), str(article["text"])), language)  # type: ignore[arg-type]
    verdicts: list[TopicVerdict] = []
    for scores, rule in zip(
        matcher.score_articles(vectors, np.array([0]), [text]), matcher.keyword_rules, strict=True
    ):
        topic = scores.topic
        hits = scores.keyword_hits[0]
        if not rule.applies(language):
            keyword_rule = (
                f"no keywords for {language or 'unknown language'}: not applied"
                if rule.by_language
                else "no keywords: not applied"
            )
        elif hits:
            keyword_rule = "named: " + ", ".join(f"{k} x{v}" for k, v in sorted(hits.items()))
        else:
            keyword_rule = f"none of its {language + ' ' if rule.by_language and language else ''}keywords named: -{topic.keyword_penalty:g}"
        if not topic.language:
            language_rule = "any language"
        elif bool(scores.eligible[0]):
            language_rule = f"{topic.language} only: article is {language or 'of unknown language'}"
        else:
            language_rule = f"{topic.language} only: article is {language}, not eligible"
        best = int(scores.best_seq[0])
        verdicts.append(
            TopicVerdict(
                topic_id=topic.topic_id,
                score=float(scores.score[0]),
                embedding_score=float(scores.embedding_score[0]),
                threshold=topic.threshold,
                flagged=bool(scores.flagged[0]),
                language_rule=language_rule,
                keyword_rule=keyword_rule,
                exemplar=topic.exemplars[int(scores.exemplar[0])],
                passage_seq=seqs[best],
                passage=texts[best],
                encoder=matcher.model,
            )
        )
    return verdicts
