"""The chat page in a real browser: Debian's Chromium, headless, driven by Playwright.

Every request to a host other than this machine is recorded and aborted, so the
tests also show that the page works with the network cut. Skips without Chromium,
except in CI (CI=true), where a missing browser fails the run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from web_fixtures import ARTIFACTS, live_server  # noqa: F401  (session fixture)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
TIMEOUT_MS = 20_000

ANSWERED = "How do you strengthen your upper back?"
OFF_TOPIC = "How do I treat knee pain when climbing stairs?"  # near the topic: declined with suggestions
URGENT = "I have chest pain going into my left arm"  # emergency: the banner alone
URGENT_WITH_ANSWER = "I have a high temperature, how do you strengthen your upper back?"  # banner + answer


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}: the browser tests must run in CI")
        pytest.skip(f"{reason}; these tests run in CI")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class ChatPage:
    """One fresh browser session on the chat, with helpers that wait like a person would."""

    def __init__(self, page, external: list[str]):
        self.page = page
        self.external = external  # requests to other hosts (aborted)
        self.box = page.locator("#question textarea")
        self.bot_messages = page.locator('#chat [data-testid="bot"]')
        self.user_messages = page.locator('#chat [data-testid="user"]')

    def ask(self, text: str):
        """Type a question, press Enter, and return the bot's reply once it is shown."""
        before = self.bot_messages.count()
        self.box.fill(text)
        self.box.press("Enter")
        return self.wait_for_reply(before)

    def wait_for_reply(self, before: int):
        from playwright.sync_api import expect

        expect(self.bot_messages).to_have_count(before + 1, timeout=TIMEOUT_MS)
        expect(self.box).to_be_editable(timeout=TIMEOUT_MS)
        return self.bot_messages.nth(before)


@pytest.fixture
def chat(browser, live_server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    external: list[str] = []

    def only_local(route):
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_server.url)
    page.locator("#question textarea").wait_for()
    yield ChatPage(page, external)
    context.close()


def test_question_gets_the_answer_with_its_source(chat, bot):
    expected = bot.ask(ANSWERED).to_dict()
    reply = chat.ask(ANSWERED)
    assert chat.user_messages.last.inner_text().strip() == ANSWERED
    # The FAQ's numbered steps are a real list, its sub-heading bold.
    assert reply.locator("ol > li").count() == 6
    assert reply.locator("ol > li").first.inner_text().strip() == "Infraspinatus exercise I."
    assert reply.locator("strong").first.inner_text() == "Strengthening exercises for the upper back muscles"
    meta = reply.locator(".qa-meta").inner_text()
    assert f"Source: {expected['source']['document']}, line {expected['source']['line']}" in meta
    assert f"Matched FAQ question: “{ANSWERED}”" in meta
    assert "Confidence: High" in meta


def test_example_questions_on_the_empty_chat_ask_when_clicked(chat, bot):
    examples = chat.page.locator("#chat button.example")
    assert examples.count() >= 3
    first = examples.first.inner_text().strip()
    assert first in {e.question for e in bot.corpus.entries}
    examples.first.click()
    reply = chat.wait_for_reply(0)
    assert chat.user_messages.last.inner_text().strip() == first
    assert f"Matched FAQ question: “{first}”" in reply.locator(".qa-meta").inner_text()


def test_suggested_question_is_asked_when_clicked(chat, bot):
    expected = bot.ask(OFF_TOPIC).to_dict()
    reply = chat.ask(OFF_TOPIC)
    assert expected["answer"] in reply.inner_text()
    options = chat.page.locator("#chat button.option")
    assert [o.strip() for o in options.all_inner_texts()] == [s["question"] for s in expected["suggestions"]]
    picked = expected["suggestions"][0]["question"]
    options.first.click()
    reply = chat.wait_for_reply(1)
    assert chat.user_messages.last.inner_text().strip() == picked
    assert f"Matched FAQ question: “{picked}”" in reply.locator(".qa-meta").inner_text()


def test_urgent_message_pins_a_banner_above_the_answer(chat, bot):
    expected = bot.ask(URGENT_WITH_ANSWER).to_dict()
    assert expected["safety"] and expected["answered"], "the test message no longer gives banner + answer"
    reply = chat.ask(URGENT_WITH_ANSWER)
    banner = reply.locator(".qa-banner[role=alert]")
    assert banner.is_visible()
    assert expected["safety"]["title"] in banner.inner_text()
    # First thing in the reply, and drawn as a coloured box, not just bold text.
    first_block = reply.locator(".prose > *").first
    assert first_block.evaluate("el => el.classList.contains('qa-banner')")
    style = banner.evaluate("el => { const s = getComputedStyle(el); return [s.backgroundColor, s.borderLeftWidth]; }")
    bubble = reply.evaluate("el => getComputedStyle(el.closest('.message')).backgroundColor")
    assert style[0] != bubble and float(style[1].removesuffix("px")) >= 4
    assert reply.locator(".qa-meta").is_visible()  # the FAQ answer follows the banner

    emergency = chat.ask(URGENT)
    assert emergency.locator(".qa-banner-emergency").is_visible()
    assert emergency.locator(".qa-meta").count() == 0  # an emergency gets the safety message only


def test_on_a_phone_a_long_urgent_reply_opens_at_its_banner(chat):
    from playwright.sync_api import expect

    chat.page.set_viewport_size({"width": 390, "height": 844})
    chat.ask(ANSWERED)
    reply = chat.ask(URGENT_WITH_ANSWER)
    # Taller than the chat: Gradio scrolls to its end, the page brings its start back.
    expect(reply.locator(".qa-banner-title")).to_be_in_viewport(ratio=1, timeout=5_000)
    reply = chat.ask(OFF_TOPIC)  # and the next turn is followed to its end again
    expect(chat.page.locator("#chat button.option").last).to_be_in_viewport(timeout=5_000)


def test_a_question_asked_at_once_after_a_long_reply_is_followed_when_answers_are_slow(chat):
    from playwright.sync_api import expect

    chat.page.set_viewport_size({"width": 390, "height": 844})
    # The page brings a tall reply's start back 600 ms after it; here 2 s, so that the next question
    # surely goes in before that (as a quick typist's would), however slow this machine.
    chat.page.evaluate("""() => { const later = window.setTimeout;
        window.setTimeout = (f, ms, ...rest) => later(f, ms === 600 ? 2000 : ms, ...rest); }""")
    chat.ask(ANSWERED)
    chat.ask(URGENT_WITH_ANSWER)  # taller than the chat

    def slow(route):  # the next answer takes 4 s to come (a loaded server, a phone network)
        time.sleep(4.0)
        route.continue_()

    chat.page.route("**/queue/join*", slow)
    # Asked before those 600 ms are up: the pending scroll to the old reply's start must
    # not pull the chat away from the new turn (Gradio then stops following the chat).
    chat.ask(OFF_TOPIC)
    expect(chat.page.locator("#chat button.option").last).to_be_in_viewport(timeout=5_000)


def test_html_and_markdown_typed_are_shown_as_text(chat):
    typed = ('<img src=x onerror="window.__xss=1"> <b id="injected">bold</b> **stars** '
             "<style>body{display:none}</style> [link](http://example.com) # not a heading")
    chat.ask(typed)
    shown = chat.user_messages.last
    assert shown.inner_text().strip() == typed
    assert shown.locator("img, b, strong, a, style, h1").count() == 0
    assert chat.page.locator("#injected").count() == 0
    assert chat.page.evaluate("window.__xss") is None
    assert chat.page.locator("#question").is_visible()  # the page was not restyled away


def test_thumbs_up_is_saved_with_the_answer(chat, live_server, bot):
    expected = bot.ask(ANSWERED).to_dict()
    chat.ask(ANSWERED)
    before = _votes(live_server.feedback_path)
    chat.page.locator('#chat button[aria-label="Like"]').last.click()
    deadline = time.monotonic() + 10
    while len(_votes(live_server.feedback_path)) == len(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    vote = _votes(live_server.feedback_path)[-1]
    assert vote["vote"] == "up" and vote["question"] == ANSWERED
    assert (vote["entry_id"], vote["score"]) == (expected["entry_id"], expected["score"])


def test_page_makes_no_request_to_another_host(chat):
    chat.ask(ANSWERED)
    chat.ask(URGENT_WITH_ANSWER)
    chat.ask(OFF_TOPIC)
    # Gradio keeps an event stream open, so "network idle" never comes: wait for fonts and images.
    chat.page.evaluate("document.fonts.ready.then(() => true)")
    chat.page.wait_for_function("[...document.images].every(img => img.complete)")
    chat.page.wait_for_timeout(500)
    ARTIFACTS.mkdir(exist_ok=True)
    chat.page.set_viewport_size({"width": 1100, "height": 1600})  # room for the whole conversation
    chat.page.wait_for_timeout(300)
    chat.page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    assert chat.external == []


def _votes(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
