"""The review page in a real browser: ``monitor ui`` in a subprocess, driven by headless Chromium.

Uses Debian's chromium (``/usr/bin/chromium``), never a browser Playwright would download.
The browser may reach only the monitor's own port on 127.0.0.1: every other request is aborted.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import store
from monitor.store.lease import lease_path
from tests.ui import ReviewDb, build_review_db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
    # No name lookups at all: whatever the browser tries in the background stays on this machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReviewDb, str, subprocess.Popen[str]]]:
    """The review database, and ``monitor ui`` serving it on a free loopback port."""
    db = build_review_db(tmp_path / "review.duckdb")
    env = {**os.environ, "MONITOR_REVIEWER": "browser-test", "MONITOR_DB_LOCK_TIMEOUT_S": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "ui", "--db", str(db.path), "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"monitor ui printed no URL: {line!r}"
        yield db, found.group(0), proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _verdict(db: ReviewDb, article_id: str, topic_id: str, timeout_s: float = 10.0) -> tuple | None:
    """``(verdict, reviewer, note, match status)`` once a review of the match is stored (None if none)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with store.connect(db.path, read_only=True) as con:
            row = con.execute(
                """
                SELECT r.verdict, r.reviewer, r.note, m.status FROM review_latest r
                JOIN matches m USING (article_id, topic_id) WHERE r.article_id = ? AND r.topic_id = ?
                """,
                [article_id, topic_id],
            ).fetchone()
        if row is not None or time.monotonic() >= deadline:
            return row
        time.sleep(0.1)


def _status(db: ReviewDb, article_id: str) -> str:
    with store.connect(db.path, read_only=True) as con:
        row = con.execute("SELECT status FROM matches WHERE article_id = ?", [article_id]).fetchone()
    assert row is not None
    return str(row[0])


def test_review_with_the_keyboard_in_chromium(
    chromium: Path, served: tuple[ReviewDb, str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    db, url, proc = served
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            context.route(lambda u: not u.startswith(url), lambda route: route.abort())
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(url)
            items = page.locator("#queue .item")
            expect(items.first).to_have_class(re.compile(r"\bcurrent\b"))
            keys = [(items.nth(i).get_attribute("data-article-id"), items.nth(i).get_attribute("data-topic-id"))
                    for i in range(items.count())]  # fmt: skip
            assert [k[0] for k in keys] == db.queue_order

            # r on the first item: saved, marked done, and the next item becomes current.
            page.keyboard.press("r")
            expect(page.locator("#status")).to_contain_text("Saved: ✓ relevant")
            expect(items.nth(0)).to_have_class(re.compile(r"\bdone\b"))
            expect(items.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
            assert _verdict(db, *keys[0]) == ("relevant", "browser-test", None, "relevant")  # type: ignore[arg-type]

            # j skips the second; n judges the third.
            page.keyboard.press("j")
            expect(items.nth(2)).to_have_class(re.compile(r"\bcurrent\b"))
            page.keyboard.press("n")
            expect(items.nth(2)).to_have_class(re.compile(r"\bdone\b"))
            expect(items.nth(2).locator(".verdict-label")).to_have_text("✗ not relevant")
            assert _verdict(db, *keys[2]) == ("not-relevant", "browser-test", None, "not-relevant")  # type: ignore[arg-type]
            assert _status(db, keys[1][0]) == "new"  # skipped, not judged

            # c opens the note box; Enter keeps the note for the next verdict.
            expect(items.nth(3)).to_have_class(re.compile(r"\bcurrent\b"))
            page.keyboard.press("c")
            expect(page.locator("#note-input")).to_be_focused()
            page.keyboard.type("same story as the wire copy")
            page.keyboard.press("Enter")
            expect(page.locator("#note-pending")).to_contain_text("same story as the wire copy")
            page.keyboard.press("r")
            expect(items.nth(3)).to_have_class(re.compile(r"\bdone\b"))
            expect(page.locator("#note-pending")).to_be_hidden()
            row = _verdict(db, *keys[3])  # type: ignore[arg-type]
            assert row == ("relevant", "browser-test", "same story as the wire copy", "relevant")

            # k goes back; ? shows the key help, Esc closes it.
            expect(items.nth(4)).to_have_class(re.compile(r"\bcurrent\b"))
            page.keyboard.press("k")
            expect(items.nth(3)).to_have_class(re.compile(r"\bcurrent\b"))
            page.keyboard.press("j")
            page.keyboard.press("?")
            expect(page.locator("#help")).to_be_visible()
            page.keyboard.press("Escape")
            expect(page.locator("#help")).to_be_hidden()
            expect(page.locator("#pending-count")).to_have_text("2")

            page.evaluate("window.scrollTo(0, 0)")  # sticky bars at their place in the full-page shot
            shot = tmp_path / "review-page.png"
            page.screenshot(path=shot, full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            print(f"\nscreenshot: {shot}")

            # With another writer holding the lease, the error shows and the item stays pending.
            fd = os.open(lease_path(db.path), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                page.keyboard.press("r")
                expect(page.locator("#status")).to_have_class(re.compile(r"\berror\b"), timeout=15_000)
                expect(page.locator("#status")).to_contain_text("is being written by")
                expect(items.nth(4)).not_to_have_class(re.compile(r"\bdone\b"))
                expect(items.nth(4)).to_have_class(re.compile(r"\bcurrent\b"))
                expect(items.nth(4).locator(".item-error")).to_contain_text("Not saved")
                page.evaluate("window.scrollTo(0, 0)")
                busy = tmp_path / "review-page-busy.png"
                page.screenshot(path=busy, full_page=True)
                print(f"screenshot (writer busy): {busy}")
            finally:
                os.close(fd)
            assert _status(db, keys[4][0]) == "new"
            page.keyboard.press("r")  # the lease is free again: the retry is saved
            expect(items.nth(4)).to_have_class(re.compile(r"\bdone\b"))
            assert _verdict(db, *keys[4]) == ("relevant", "browser-test", None, "relevant")  # type: ignore[arg-type]

            # The story page is reachable from the queue and names the other carriers.
            page.locator(f'#queue .item[data-article-id="{db.queue_order[0]}"] a[href^="/story/"]').click()
            expect(page.locator("section.also")).to_contain_text("Daily Two")
            expect(page.locator("section.also")).to_contain_text("Mirror Three")
        finally:
            browser.close()
    # The page's own 503 answer is logged by the browser as a failed resource; nothing else may fail.
    assert [p for p in problems if "503" not in p] == []

    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "Review page stopped." in out
