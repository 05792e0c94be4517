"""The keyword rule: whole words, any case, any script; one implementation for every caller."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.matching.keywords import KeywordRule, keyword_pattern, scoring_text

KEYWORDS = ["Iran", "Tehran", "Revolutionary Guards", "Revolutionary Guard", "Иран", "ایران", "伊朗"]
RULE = KeywordRule(KEYWORDS)

# Separators that are not word characters in any script.
SEPARATORS = st.sampled_from([" ", ", ", ". ", "(", ")", "\n", "«", "»", "\u200c", "؛ ", "、"])


@given(keyword=st.sampled_from(KEYWORDS), before=SEPARATORS, after=SEPARATORS)
def test_a_keyword_between_separators_is_found_in_any_case(keyword: str, before: str, after: str) -> None:
    for form in (keyword, keyword.upper(), keyword.lower()):
        assert RULE.hits(f"word{before}{form}{after}word") == {keyword.lower(): 1}


@given(keyword=st.sampled_from(["Iran", "Иран", "ایران"]), glue=st.sampled_from(["ian", "é", "а", "ی", "s1"]))
def test_a_keyword_glued_to_letters_is_not_found(keyword: str, glue: str) -> None:
    assert RULE.hits(f"The {keyword}{glue} report") == {}


def test_counts_every_occurrence_and_prefers_the_longest_keyword() -> None:
    text = "Iran said. IRAN said again; the Revolutionary Guards and Tehran. Иран, ایران."
    assert RULE.hits(text) == {"iran": 2, "revolutionary guards": 1, "tehran": 1, "иран": 1, "ایران": 1}


def test_a_rule_without_keywords_never_applies() -> None:
    empty = KeywordRule([])
    assert not empty.applies() and empty.hits("Iran") == {}
    assert RULE.applies() and RULE.applies("fa")  # a plain list applies to every language


def test_keywords_are_escaped_not_read_as_patterns() -> None:
    rule = KeywordRule(["U.S.", "a+b"])
    assert rule.hits("The U.S. and a+b") == {"u.s.": 1, "a+b": 1}
    assert rule.hits("The UxSx and aab") == {}


def test_scoring_text_is_title_newline_body() -> None:
    assert scoring_text("Head", "Body") == "Head\nBody"
    assert scoring_text(None, "Body") == "\nBody"


@pytest.mark.parametrize("text", ["Иран провёл испытание", "گزارش: ایران آزمایش کرد"])
def test_duckdb_re2_word_boundaries_miss_non_ascii_keywords_python_does_not(text: str) -> None:
    """Why keyword evidence is counted in Python, not pushed down into SQL."""
    keyword = "Иран" if "Иран" in text else "ایران"
    assert RULE.hits(text) == {keyword.lower(): 1}
    with duckdb.connect() as con:
        re2 = con.execute("SELECT regexp_matches(?, ?)", [text, rf"(?i)\b{keyword}\b"]).fetchone()[0]
    assert re2 is False
    assert keyword_pattern([keyword]).search(text)


def test_keywords_per_language_apply_only_to_articles_in_that_language() -> None:
    rule = KeywordRule([], {"en": ["Iran", "Tehran"], "fa": ["ایران", "تهران"]})
    assert rule.applies("en") and rule.applies("fa")
    assert not rule.applies("de") and not rule.applies(None)  # no German keywords: no penalty either
    assert rule.hits("Iran said; ایران گفت", "en") == {"iran": 1}
    assert rule.hits("Iran said; ایران گفت", "fa") == {"ایران": 1}
    assert rule.hits("Iran said", "de") == {}
    both = KeywordRule(["IRGC"], {"ru": ["Иран"]})
    assert both.words_for("ru") == ("IRGC", "Иран") and both.applies("tr")


def test_chinese_keywords_match_inside_unspaced_text() -> None:
    rule = KeywordRule([], {"zh": ["伊朗", "德黑兰"]})
    assert rule.hits("伊朗周五试射导弹，德黑兰称", "zh") == {"伊朗": 1, "德黑兰": 1}
    assert KeywordRule(["Iran"]).hits("伊朗Iran导弹") == {}  # a Latin keyword still needs word edges
