"""Screenshots of the chat page's main states at desktop (1366×900) and phone (390×844) sizes, for review.

Not a test: it asserts nothing beyond each state appearing. It starts `policy-qa serve` over the
project's index (or uses --url) and drives Debian's headless chromium with Playwright:

    .venv/bin/python bench/screenshots.py [--out bench/results/screenshots] [--url http://127.0.0.1:7860/]

States: empty chat, an answer with its sources, after clicking [2], a low-confidence answer, the
operator tab after an exact reference, and the 收录文件 table. Needs a CJK font (fonts-noto-cjk);
without one every Chinese character is an empty box.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # reuse the test suite's server starter and chromium lookup

from live_server import LiveServer, chromium_path  # noqa: E402

from assistant.config import get_settings  # noqa: E402

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
QUESTION = "简易注销怎么办理？"
LOW_QUESTION = "餐饮店需要办哪些许可证"
REFERENCE = "登记条例第三十三条"
WAIT_MS = 60_000


def ask(page: Page, question: str) -> None:
    """Type a question and send it with Enter, then wait for its rendered answer."""
    before = page.locator(".pq-answer").count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator(".pq-answer").nth(before).wait_for()
    page.wait_for_timeout(400)  # let the answer scroll into place before the picture


def empty(page: Page) -> None:
    """The page as it first loads."""


def answer(page: Page) -> None:
    """An answer with its sources (open on desktop, one tap away on a phone)."""
    ask(page, QUESTION)


def cite_two(page: Page) -> None:
    """After clicking [2]: source 2 opened and scrolled to."""
    ask(page, QUESTION)
    page.locator(".pq-answer .pq-cite", has_text="[2]").first.click()
    page.wait_for_timeout(800)


def low(page: Page) -> None:
    """A low-confidence answer: amber frame, badge, the 'no direct provision' line."""
    ask(page, LOW_QUESTION)


def operator(page: Page) -> None:
    """Ctrl+K, an exact reference: 精确匹配 first, then 相关条文."""
    page.keyboard.press("Control+k")
    page.locator("#search-query textarea").wait_for()
    page.keyboard.type(REFERENCE)
    page.keyboard.press("Enter")
    page.locator("#exact-heading").wait_for()
    page.wait_for_timeout(400)


def documents(page: Page) -> None:
    """The 收录文件 table, opened."""
    page.get_by_role("tab", name="条文检索（坐席）").click()
    page.get_by_text("收录文件").click()
    page.locator(".pq-docs").scroll_into_view_if_needed()
    page.wait_for_timeout(400)


STATES: dict[str, Callable[[Page], None]] = {
    "chat-empty": empty, "chat-answer": answer, "chat-cite-2": cite_two, "chat-low": low,
    "operator-exact": operator, "operator-documents": documents,
}


@contextmanager
def running_server(url: str | None) -> Iterator[str]:
    """The given URL, or a fresh `policy-qa serve` over the configured index for the duration."""
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp), get_settings().index_dir).start()
        try:
            yield server.base_url + "/"
        finally:
            server.stop()


def cjk_font_installed() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=zh"], check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "screenshots")
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--full-page", action="store_true", help="whole page, not just the window")
    args = parser.parse_args(argv)
    if not cjk_font_installed():
        print("warning: no CJK font (apt-get install -y fonts-noto-cjk): Chinese will show as boxes")
    executable = chromium_path()
    if executable is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with running_server(args.url) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        for size, viewport in SIZES.items():
            for name, state in STATES.items():
                context = browser.new_context(viewport=viewport, locale="zh-CN")
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(url, wait_until="load")
                page.locator("#question textarea").wait_for()
                state(page)
                path = args.out / f"{name}-{viewport['width']}.png"
                page.screenshot(path=str(path), full_page=args.full_page)
                print(f"{size:7} {name:20} {path}")
                context.close()
        browser.close()


if __name__ == "__main__":
    main()
