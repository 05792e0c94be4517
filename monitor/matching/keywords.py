"""Keyword evidence: whole-word, case-insensitive counts of a topic's keywords, in every script.

This is the only implementation of the rule; ingest, rescore, evaluate and explain all
count keywords through it, so a keyword such as ``ایران`` or ``Иран`` scores the same
everywhere. (DuckDB's RE2 treats only ASCII letters as word characters, which is why the
rule is not pushed down into SQL.)

Keywords may be given per language. Then the rule applies to an article only when the
topic has keywords for the article's language (or keywords for ``any`` language): a
Persian article is not penalised for lacking the English word "Iran".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from monitor.ingest.language import UNSPACED_CHAR

ANY_LANGUAGE = "any"


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any keyword as a whole word.

    A keyword matches where it is not glued to other letters or digits of any script:
    ``Iran`` is found in "Iran's" and "(Iran)" but not in "Iranian" or "Iranés", and
    ``Иран`` in "Иран," but not in "Ирана" (list inflected forms as keywords of their own).
    Keywords in scripts written without spaces (Chinese, Japanese, Thai) match anywhere:
    ``伊朗`` in "伊朗试射". Longer keywords are tried first, so "Revolutionary Guards" wins
    over "Revolutionary Guard".
    """
    parts = []
    for keyword in sorted(keywords, key=len, reverse=True):
        escaped = re.escape(keyword)  # not lower(): "İran".lower() grows a combining dot; IGNORECASE folds
        # In scripts written without spaces between words, a keyword matches inside a longer run.
        parts.append(escaped if UNSPACED_CHAR.search(keyword) else rf"(?<!\w){escaped}(?!\w)")
    return re.compile("|".join(parts), re.IGNORECASE)


class KeywordRule:
    """Counts a topic's keywords in a text.

    Args:
        keywords: keywords for every language (empty: none).
        by_language: keywords per ISO 639-1 language code.
    """

    def __init__(
        self, keywords: Sequence[str], by_language: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.keywords = tuple(keywords)
        self.by_language = {lang: tuple(words) for lang, words in (by_language or {}).items()}
        self._patterns: dict[str | None, re.Pattern[str] | None] = {}

    @property
    def key(self) -> tuple[object, ...]:
        """Identity of the rule (topics that share one count once)."""
        return (self.keywords, tuple(sorted(self.by_language.items())))

    def words_for(self, language: str | None) -> tuple[str, ...]:
        """The keywords that apply to an article in this language (empty: the rule does not apply)."""
        if not self.by_language:
            return self.keywords
        return self.keywords + self.by_language.get(language or "", ())

    def applies(self, language: str | None = None) -> bool:
        """True when an article in this language naming none of the keywords is penalised."""
        return bool(self.words_for(language))

    def hits(self, text: str, language: str | None = None) -> dict[str, int]:
        """Each keyword found in the text (lower-cased as found) with its count."""
        if language not in self._patterns:
            words = self.words_for(language)
            self._patterns[language] = keyword_pattern(words) if words else None
        pattern = self._patterns[language]
        if pattern is None:
            return {}
        # "İran".lower() is "i̇ran" (with a combining dot): drop it so every spelling counts as one keyword.
        return dict(Counter(found.lower().replace("\u0307", "") for found in pattern.findall(text)))


def scoring_text(title: str | None, text: str) -> str:
    """The text keyword evidence is read from: the title, a newline, the body."""
    return f"{title or ''}\n{text}"
