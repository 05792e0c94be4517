"""Languages and words: identification with py3langid's bundled model (nothing downloaded), and
word boundaries that hold in scripts written without spaces."""

from __future__ import annotations

import re

import py3langid

# A character of a script written without spaces counts as one word, so that a passage of
# Chinese, Japanese or Thai stays inside the model's window like a passage of any other script.
_UNSPACED = "\u0e00-\u0e7f\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")
UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")


def words_of(text: str) -> list[str]:
    """A text's words: whitespace-separated runs, and single characters of unspaced scripts."""
    return _TOKEN.findall(text)


def detect_language(text: str) -> str | None:
    """Detect the language of a text.

    Args:
        text: any text; the first 2,000 characters are read.

    Returns:
        An ISO 639-1 code, or None for text too short to judge.
    """
    sample = text[:2000]
    if len(sample.strip()) < 20:
        return None
    code, _score = py3langid.classify(sample)
    return str(code)
