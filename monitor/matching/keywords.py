"""Keyword evidence: whole-word, case-insensitive counts of a topic's keywords, in every script.

This is the only implementation of the rule; ingest, rescore, evaluate and explain all
count keywords through it, so a keyword such as ``ایران`` or ``Иран`` scores the same
everywhere. (DuckDB's RE2 treats only ASCII letters as word characters, which is why the
rule is not pushed down into SQL.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any keyword as a whole word.

    A keyword matches where it is not glued to other letters or digits of any script:
    ``Iran`` is found in "Iran's" and "(Iran)" but not in "Iranian" or "Iranés", and
    ``Иран`` in "Иран," but not in "Ирана" (list inflected forms as keywords of their own).
    Longer keywords are tried first, so "Revolutionary Guards" wins over "Revolutionary Guard".
    """
    alternatives = "|".join(re.escape(k.lower()) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class KeywordRule:
    """Counts a topic's keywords in a text.

    Args:
        keywords: the topic's keywords (empty: the rule never applies).
    """

    def __init__(self, keywords: Sequence[str]) -> None:
        self.keywords = tuple(keywords)
        self._pattern = keyword_pattern(self.keywords) if self.keywords else None

    @property
    def applies(self) -> bool:
        """True when the topic lists keywords, so an article naming none of them is penalised."""
        return self._pattern is not None

    def hits(self, text: str) -> dict[str, int]:
        """Each keyword found in the text (lower-cased as found) with its count."""
        if self._pattern is None:
            return {}
        return dict(Counter(found.lower() for found in self._pattern.findall(text)))


def scoring_text(title: str | None, text: str) -> str:
    """The text keyword evidence is read from: the title, a newline, the body."""
    return f"{title or ''}\n{text}"
