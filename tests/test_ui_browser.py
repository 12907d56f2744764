"""The chat UI in a real headless browser (Debian's chromium driven by Playwright) against a real
`policy-qa serve`: ask, read the answer, open the closed sources accordion, follow up, rate an
answer, search clauses as an operator and copy one; a screenshot is saved to a temp path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, chromium_path
from playwright.sync_api import Browser, Page, expect, sync_playwright

from assistant.serving.feedback import FeedbackEntry, FeedbackStore

QUESTION = "简易注销怎么办理？"
EXAMPLE = "市场主体登记管理条例第三十三条是什么？"
REG_33 = "shichang-zhuti-dengji-guanli-tiaoli#33"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
WAIT_MS = 60_000  # upper bound for the UI to react: a hang guard, not a speed check
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def server(live_server: LiveServer) -> LiveServer:
    return live_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does this)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def open_page(browser: Browser, url: str) -> Page:
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000}, locale="zh-CN",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="load")
    page.locator("#question textarea").wait_for()
    return page


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    page = open_page(browser, server.base_url + "/")
    yield page
    page.context.close()


def ask(page: Page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


def answer_bubble(page: Page, index: int):  # noqa: ANN201 - a Playwright Locator
    """The index-th answer (0-based): bot messages that are not a sources accordion."""
    answers = page.locator('#chatbot [data-testid="bot"]').filter(has_not=page.locator(".thought-group"))
    expect(answers).to_have_count(index + 1)
    return answers.nth(index)


def wait_for(check: Callable[[], object], what: str, timeout_s: float = WAIT_MS / 1000) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_question_answer_and_closed_sources_accordion(page: Page, server: LiveServer, tmp_path: Path) -> None:
    expected = httpx.post(server.base_url + "/api/ask", json={"question": QUESTION}, timeout=60).json()
    cited = expected["citations"]

    ask(page, QUESTION)
    accordion = page.locator(".thought-group .title", has_text=f"来源 ({len(cited)})")
    expect(accordion).to_be_visible()
    answer = answer_bubble(page, 0)
    expect(answer).to_contain_text("[1]")
    expect(answer).to_contain_text(expected["answer"].split("[1]")[0])

    # Closed by default: the cited clauses are one click away, not on screen yet.
    sources = page.locator(".thought-group")
    expect(sources).not_to_contain_text(cited[0]["doc_title"])
    accordion.click()
    for citation in cited:
        expect(sources).to_contain_text(f"[{citation['n']}]《{citation['doc_title']}》{citation['label']}")
        for line in citation["text"].splitlines():  # the whole clause, verbatim
            expect(sources).to_contain_text(line)
    if cited[0]["doc_number"]:
        expect(sources).to_contain_text(cited[0]["doc_number"])

    shot = tmp_path / "chat-with-sources.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_follow_up_question_keeps_the_topic(page: Page) -> None:
    ask(page, QUESTION)
    expect(answer_bubble(page, 0)).to_contain_text("[1]")
    ask(page, "那个体户呢？")
    follow = answer_bubble(page, 1)
    expect(follow).to_contain_text("个体工商户")
    expect(follow).to_contain_text("[1]")


def test_example_click_then_dislike_with_a_reason_is_stored(page: Page, server: LiveServer) -> None:
    page.get_by_text(EXAMPLE, exact=True).click()
    expect(answer_bubble(page, 0)).to_contain_text("[1]")
    page.locator('#chatbot button[aria-label="踩"], #chatbot button[aria-label="Dislike"]').last.click()

    def stored() -> list[FeedbackEntry]:
        return [e for e in FeedbackStore(server.feedback_path).list() if e.question == EXAMPLE]

    entry = wait_for(stored, "the dislike in the feedback file")[-1]
    assert entry.rating == "dislike" and entry.source == "ui"
    assert REG_33 in entry.clause_ids and "[1]" in entry.answer

    reason_row = page.locator("#reason-row")
    expect(reason_row).to_be_visible()
    page.locator("#feedback-reason textarea").fill("希望给出办理地点")
    page.locator("#feedback-submit").click()
    expect(reason_row).to_be_hidden()
    wait_for(lambda: any(e.id == entry.id and e.reason == "希望给出办理地点" for e in stored()), "the reason")


def test_operator_searches_an_article_and_copies_it(page: Page, server: LiveServer) -> None:
    clause_text = httpx.get(server.base_url + "/api/clauses/" + REG_33.replace("#", "%23"), timeout=30).json()["clause"]["text"]
    page.get_by_role("tab", name="条文检索（坐席）").click()
    page.locator("#search-query textarea").fill("登记条例第三十三条")
    page.locator("#search-button").click()
    first = page.locator(".clause-card").first
    expect(first).to_contain_text("《中华人民共和国市场主体登记管理条例》第三十三条")
    expect(first).to_contain_text(REG_33)
    expect(page.locator("#search-status")).to_contain_text("找到")
    first.locator('button[aria-label="复制"], button[aria-label="Copy"]').first.click()
    copied = wait_for(lambda: page.evaluate("navigator.clipboard.readText()"), "the clipboard")
    assert copied == clause_text


def test_missing_index_page_says_to_build(browser: Browser, tmp_path: Path) -> None:
    srv = LiveServer(tmp_path, tmp_path / "missing-index").start()
    try:
        page = open_page(browser, srv.base_url + "/")
        expect(page.locator("#index-banner")).to_contain_text("policy-qa build")
        ask(page, QUESTION)
        expect(page.locator('#chatbot [data-testid="bot"]').first).to_contain_text("policy-qa build")
        page.context.close()
    finally:
        srv.stop()
