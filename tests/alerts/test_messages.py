"""Alert and digest messages: what an analyst reads, including the language of coverage not in English."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.alerts.messages import NOT_TRANSLATED, alert_message, digest_message
from monitor.models import Alert

WHEN = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def alert(n: int, language: str | None, passage: str, hits: dict[str, int]) -> Alert:
    return Alert(
        alert_id=f"a{n}", article_id=f"art{n}", topic_id="iran-missiles", topic_name="Iran's missiles",
        score=0.8 + n / 100, title=f"Headline {n}", url=f"http://127.0.0.1:9/{n}.html", site_name="Outlet",
        published_at=WHEN, passage=passage, keyword_hits=hits, language=language, threshold=0.791,
    )  # fmt: skip


PERSIAN = alert(
    1, "fa", "سپاه پاسداران ایران موشک بالستیک جدیدی را آزمایش کرد.", {"ایران": 1, "سپاه پاسداران": 1}
)
CHINESE = alert(2, "zh", "伊朗革命卫队试射了一枚新型弹道导弹。", {"伊朗": 1, "革命卫队": 1})
ENGLISH = alert(3, "en", "Iran test-fired a new ballistic missile.", {"Iran": 1})


def test_a_persian_alert_says_plainly_that_it_is_not_translated() -> None:
    message = alert_message(PERSIAN)
    assert f"Language: fa ({NOT_TRANSLATED})" in message.text
    assert "Language: fa" in message.markdown and "not translated" in message.markdown
    assert message.payload["language"] == "fa"
    # The passage is shown as written, with the Persian keywords marked.
    assert "*ایران*" in message.text and "*سپاه پاسداران*" in message.text


def test_chinese_keywords_are_marked_inside_unspaced_text() -> None:
    message = alert_message(CHINESE)
    assert "*伊朗**革命卫队*试射" in message.text
    assert f"Language: zh ({NOT_TRANSLATED})" in message.text


def test_an_english_alert_has_no_language_note() -> None:
    message = alert_message(ENGLISH)
    assert "Language:" not in message.text and NOT_TRANSLATED not in message.markdown


def test_a_digest_tags_each_story_not_in_english() -> None:
    message = digest_message("Iran's missiles", "iran-missiles", "ch", [PERSIAN, ENGLISH, CHINESE])
    lines = [line for line in message.text.splitlines() if line[:2] in {"1.", "2.", "3."}]
    assert len(lines) == 3
    assert [("[fa," in line, "[zh," in line, NOT_TRANSLATED in line) for line in lines] == [
        (False, False, False),  # English, best score first
        (False, True, True),
        (True, False, True),
    ]
