"""The chat UI in a real headless browser (Debian's chromium driven by Playwright) against a real
`policy-qa serve`: ask, read the answer and its sources (the quoted sentence marked), follow a [n],
copy the 工单 reply, follow up, rate an answer, search clauses as an operator and copy one, at desktop
(1366×900) and phone (390×844) sizes; a screenshot is saved to a temp path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, chromium_path
from playwright.sync_api import Browser, Page, expect, sync_playwright

from assistant.serving.feedback import FeedbackEntry, FeedbackStore

QUESTION = "简易注销怎么办理？"
LIST_QUESTION = "哪些情形不适用简易注销？"  # its answer quotes a list of 项 (实施细则第四十八条)
EXAMPLE = "市场主体登记管理条例第三十三条是什么？"
LOW_QUESTION = "餐饮店需要办哪些许可证"  # the corpus has no licensing rules for restaurants
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
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


def open_page(browser: Browser, url: str, viewport: dict[str, int] | None = None) -> Page:
    context = browser.new_context(
        viewport=viewport or {"width": 1280, "height": 1000}, locale="zh-CN",
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
    """The index-th answer (0-based): bot messages that are not a Gradio thought accordion."""
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


@pytest.fixture
def phone(browser: Browser, server: LiveServer) -> Iterator[Page]:
    page = open_page(browser, server.base_url + "/", PHONE)
    yield page
    page.context.close()


@pytest.fixture
def desktop(browser: Browser, server: LiveServer) -> Iterator[Page]:
    page = open_page(browser, server.base_url + "/", DESKTOP)
    yield page
    page.context.close()


def api_answer(server: LiveServer, question: str) -> dict:
    return httpx.post(server.base_url + "/api/ask", json={"question": question}, timeout=60).json()


def quoted_lines(answer_text: str, n: int) -> list[str]:
    """The answer's single-line quotes from citation n, without their marker."""
    return [line.removesuffix(f"[{n}]") for line in answer_text.splitlines() if line.endswith(f"[{n}]")
            and line.count("[") == 1]


def assert_no_horizontal_overflow(page: Page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width}px wide in a {inner}px window"


def test_answer_lines_summary_and_open_sources_with_the_quote_marked(desktop: Page, server: LiveServer,
                                                                       tmp_path: Path) -> None:
    expected = api_answer(server, LIST_QUESTION)
    cited = expected["citations"]
    assert "（一）" in expected["answer"], "the example question no longer quotes a list of 项"
    ask(desktop, LIST_QUESTION)
    answer = desktop.locator(".pq-answer").first
    expect(answer).to_be_visible()
    # 依据 for a confident answer, 可能相关 for the low form: the summary says which it is.
    expect(answer.locator(".pq-basis")).to_contain_text("依据：" if expected["confidence"] == "high" else "可能相关：")
    for citation in cited:
        expect(answer.locator(".pq-basis")).to_contain_text(citation["label"])
    # One line per quoted span; a 项 list is a list with one marker (this answer quotes one).
    lines = answer.locator(".pq-lines > .pq-line")
    expect(lines).to_have_count(sum(1 for line in expected["answer"].splitlines() if "[" in line))
    item_list = answer.locator(".pq-list")
    expect(item_list.locator("li")).not_to_have_count(0)
    expect(item_list.locator(".pq-cite")).to_have_count(1)

    # Open by default on desktop: every source with 文号, 施行日期, status and clause id.
    sources = answer.locator(".pq-sources")
    expect(sources).to_have_attribute("open", "")
    for citation in cited:
        card = sources.locator(f".pq-src-{citation['n']}")
        expect(card).to_be_visible()
        expect(card.locator(".pq-source-title")).to_have_text(f"[{citation['n']}]《{citation['doc_title']}》{citation['label']}")
        for line in citation["text"].splitlines():  # the whole clause, verbatim
            expect(card).to_contain_text(line)
        for field in (citation["doc_number"], citation["effective"], citation["status_zh"], citation["clause_id"]):
            if field:
                expect(card).to_contain_text(field)
    # The mark sits on the quoted sentence, and on nothing else of the clause.
    first = cited[0]
    marks = sources.locator(f".pq-src-{first['n']} mark").all_inner_texts()
    assert marks == quoted_lines(expected["answer"], first["n"]), marks
    expect(sources.locator(f".pq-src-{first['n']} .pq-where")).to_contain_text("第")

    assert_no_horizontal_overflow(desktop)
    shot = tmp_path / "chat-with-sources.png"
    desktop.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_on_a_phone_clicking_a_marker_reveals_its_source(phone: Page, server: LiveServer) -> None:
    cited = api_answer(server, QUESTION)["citations"]
    assert len(cited) >= 2, "the question should cite two clauses"
    ask(phone, QUESTION)
    answer = phone.locator(".pq-answer").first
    source = answer.locator(".pq-src-2")
    expect(answer.locator(".pq-sources-title")).to_be_visible()  # one tap away, but closed
    expect(source).to_be_hidden()
    answer.locator(".pq-cite", has_text="[2]").first.click()
    expect(source).to_be_visible()
    expect(source).to_be_in_viewport()
    expect(source).to_contain_text(cited[1]["label"])
    # One page scroll, not a scroll box inside the page; nothing wider than the screen.
    chat = phone.locator("#chatbot")
    assert chat.evaluate("e => e.scrollHeight <= e.clientHeight + 1")
    assert_no_horizontal_overflow(phone)


def test_on_a_desktop_the_chat_grows_with_the_page_instead_of_scrolling_in_a_box(desktop: Page) -> None:
    ask(desktop, QUESTION)
    expect(desktop.locator(".pq-answer").first).to_be_visible()
    ask(desktop, LIST_QUESTION)
    expect(desktop.locator(".pq-answer")).to_have_count(2)
    chat = desktop.locator("#chatbot")
    assert chat.evaluate("e => e.scrollHeight <= e.clientHeight + 1"), "the chat scrolls inside a box"
    assert chat.evaluate("e => e.clientHeight") > 0.62 * desktop.evaluate("innerHeight")  # taller than the old box
    assert desktop.evaluate("document.scrollingElement.scrollHeight > innerHeight")  # the page itself scrolls


def test_no_control_covers_the_sources_on_a_phone(phone: Page) -> None:
    ask(phone, QUESTION)
    answer = phone.locator(".pq-answer").first
    answer.locator(".pq-sources-title").click()
    titles = answer.locator(".pq-source-title")
    expect(titles).not_to_have_count(0)
    for i in range(titles.count()):
        title = titles.nth(i)
        title.scroll_into_view_if_needed()
        covered = title.evaluate("""t => {
            const r = t.getBoundingClientRect();
            const points = [[r.left + 4, r.top + r.height / 2], [r.left + r.width / 2, r.top + r.height / 2],
                            [r.right - 4, r.top + r.height / 2]];
            return points.filter(([x, y]) => y > 0 && y < innerHeight && !t.contains(document.elementFromPoint(x, y)));
        }""")
        assert covered == [], f"source title {i + 1} is covered at {covered}"


def test_copy_reply_gives_the_answer_and_its_basis_lines(desktop: Page, server: LiveServer) -> None:
    expected = api_answer(server, QUESTION)
    ask(desktop, QUESTION)
    button = desktop.locator(".pq-answer .pq-copy-reply").first
    button.click()
    expect(button).to_have_text("已复制")
    copied = wait_for(lambda: desktop.evaluate("navigator.clipboard.readText()"), "the clipboard")
    answer_part, _, basis = copied.partition("\n依据：\n")
    assert answer_part.strip() == expected["answer"]
    lines = basis.splitlines()
    assert len(lines) == len(expected["citations"])
    for line, citation in zip(lines, expected["citations"]):
        assert line.startswith(f"[{citation['n']}]《{citation['doc_title']}》{citation['label']}")
        if citation["doc_number"]:
            assert citation["doc_number"] in line
    # Gradio's own copy button under the answer gives the same text, not the message's HTML.
    desktop.evaluate("navigator.clipboard.writeText('')")
    desktop.locator('#chatbot [data-testid="bot"]').last.hover()
    desktop.locator('#chatbot .message-buttons button[aria-label="Copy message"]').last.click()
    assert wait_for(lambda: desktop.evaluate("navigator.clipboard.readText()"), "the clipboard") == copied


def test_a_low_confidence_answer_looks_different(desktop: Page, server: LiveServer) -> None:
    assert api_answer(server, LOW_QUESTION)["confidence"] == "low", "the example question is no longer low-confidence"
    ask(desktop, LOW_QUESTION)
    answer = desktop.locator(".pq-answer").first
    expect(answer).to_have_class(re.compile(r"\bpq-low\b"))
    expect(answer.locator(".pq-badge")).to_have_text("低置信度")
    expect(answer).to_contain_text("不能确定它们就是答案")
    expect(answer.locator(".pq-basis")).to_contain_text("可能相关：")
    frame = answer.evaluate("e => getComputedStyle(e).borderLeftWidth")
    assert frame != "0px"


def test_question_text_is_shown_not_run(desktop: Page) -> None:
    desktop.evaluate("window.__pwned = 0")
    ask(desktop, '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>简易注销怎么办理？')
    expect(desktop.locator(".pq-answer").first).to_be_visible()
    assert desktop.evaluate("window.__pwned") == 0
    assert desktop.locator("#chatbot [onerror], #chatbot script").count() == 0  # Gradio sanitises the question
    assert desktop.locator(".pq-answer img").count() == 0  # and the answer shows it as text, if at all


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
        return [e for e in FeedbackStore(server.db_path).list() if e.question == EXAMPLE]

    entry = wait_for(stored, "the dislike in the feedback database")[-1]
    assert entry.rating == "dislike" and entry.source == "ui"
    assert REG_33 in entry.clause_ids and "[1]" in entry.answer

    reason_row = page.locator("#reason-row")
    expect(reason_row).to_be_visible()
    page.locator("#feedback-reason textarea").fill("希望给出办理地点")
    page.locator("#feedback-submit").click()
    expect(reason_row).to_be_hidden()
    wait_for(lambda: any(e.id == entry.id and e.reason == "希望给出办理地点" for e in stored()), "the reason")


def test_operator_exact_reference_comes_alone_first(page: Page) -> None:
    page.keyboard.press("Control+k")  # Ctrl+K: to the search box, from anywhere
    wait_for(lambda: page.evaluate("!!document.activeElement.closest('#search-query')"), "focus in the search box")
    page.keyboard.type("登记条例第三十三条")
    page.keyboard.press("Enter")
    exact = page.locator(".exact-match:not(.exact-match .exact-match)")  # gr.Group repeats its classes inside
    expect(exact).to_have_count(1)
    expect(exact).to_contain_text("《中华人民共和国市场主体登记管理条例》第三十三条")
    expect(page.locator("#exact-heading")).to_have_text("精确匹配")
    related = page.locator(".related-match:not(.related-match .related-match)")
    expect(related.first).to_be_visible()
    expect(related.filter(has_text="《不动产登记暂行条例》第三十三条")).to_have_count(1)
    heading = page.locator("#related-heading")
    assert exact.bounding_box()["y"] < heading.bounding_box()["y"] < related.first.bounding_box()["y"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366", "390"])
def test_documents_table_fits_the_window(browser: Browser, server: LiveServer, viewport: dict[str, int]) -> None:
    page = open_page(browser, server.base_url + "/", viewport)
    try:
        page.get_by_role("tab", name="条文检索（坐席）").click()
        page.get_by_text("收录文件").click()
        table = page.locator(".pq-docs")
        expect(table.locator("tbody tr")).not_to_have_count(0)
        for column in ("施行日期", "状态", "条文数"):
            cell = table.locator(f'td[data-label="{column}"]').first
            expect(cell).to_be_visible()
            box = cell.bounding_box()
            assert box["x"] + box["width"] <= viewport["width"], f"{column} is off screen"
        assert_no_horizontal_overflow(page)
    finally:
        page.context.close()


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


def test_an_operator_marks_the_clause_that_answers_and_the_label_is_stored(page: Page, server: LiveServer) -> None:
    from assistant.knowledge.labels import LabelStore

    question = "营业执照丢了去哪补"
    page.get_by_role("tab", name="条文检索（坐席）").click()
    page.locator("#search-query textarea").fill(question)
    page.locator("#search-button").click()
    cards = page.locator(".clause-card")
    expect(cards.first).to_be_visible()
    card = cards.filter(has_text="第三十七条").first  # 营业执照遗失 → 申请补领
    clause_id = next(c for c in re.findall(r"[a-z-]+#\d+", card.inner_text()))
    card.locator(".label-answers").click()
    expect(page.locator("#label-status")).to_contain_text("已记录")
    labels = wait_for(lambda: [x for x in LabelStore(server.db_path).all() if x.question == question], "the label")
    assert [(x.verdict, x.clause_id, x.operator) for x in labels] == [("answers", clause_id, "ui")]
    page.locator("#label-none").click()
    expect(page.locator("#label-status")).to_contain_text("都不能答复")
    assert wait_for(lambda: [x.verdict for x in LabelStore(server.db_path).all() if x.question == question][1:],
                    "the second label") == ["none"]


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
