"""Language identification with py3langid's bundled model (nothing downloaded)."""

from __future__ import annotations

import py3langid


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
