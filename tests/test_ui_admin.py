"""The 知识库管理 tab in real headless Chromium against a real `policy-qa serve` with an operator token:
upload a .docx, read the preview, confirm, see it listed and in the history, then ask what only it says."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kb_files import LOCAL_NOTICE, write_docx
from live_server import LiveServer
from playwright.sync_api import Browser, Page, expect
from test_ui_browser import WAIT_MS, browser, open_page  # noqa: F401 - the shared browser fixture

from assistant.config import Settings

TOKEN = "ui-operator-token"
GUARD_S = 120.0  # bounds the wait for the index swap; not a speed check


@pytest.fixture(scope="module")
def admin_server(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("ui-admin")
    shutil.copytree(index_settings.corpus_dir, work / "corpus")
    shutil.copytree(index_settings.index_dir, work / "index")
    server = LiveServer(work, work / "index", POLICY_QA_CORPUS_DIR=str(work / "corpus"),
                        POLICY_QA_DB_PATH=str(work / "kb.sqlite3"), POLICY_QA_ADMIN_TOKEN=TOKEN).start()
    yield server
    server.stop()


def open_admin_tab(browser: Browser, server: LiveServer) -> Page:  # noqa: F811
    page = open_page(browser, server.base_url + "/")
    page.get_by_role("tab", name="知识库管理").click()
    return page


def test_upload_preview_confirm_list_and_history(browser: Browser, admin_server: LiveServer,  # noqa: F811
                                                 tmp_path: Path) -> None:
    page = open_admin_tab(browser, admin_server)
    expect(page.locator("#kb-documents table")).to_be_visible()  # the list loads with the tab
    page.fill("#kb-token", TOKEN)
    page.fill("#kb-operator", "李科长")
    page.set_input_files("#kb-file", str(write_docx(tmp_path / "贴息办法.docx", LOCAL_NOTICE)))
    page.click("#kb-preview")
    preview = page.locator("#kb-preview-box")
    expect(preview).to_contain_text("厦府办规〔2024〕5号")
    expect(preview).to_contain_text("厦门市中小企业首贷续贷贴息办法")
    expect(preview).to_contain_text("第一条、第二条、第三条")
    page.click("#kb-confirm")
    expect(page.locator("#kb-status")).to_contain_text("已添加《厦门市中小企业首贷续贷贴息办法》", timeout=WAIT_MS * 3)
    expect(page.locator("#kb-documents")).to_contain_text("厦门市中小企业首贷续贷贴息办法")
    expect(page.locator("#kb-history")).to_contain_text("api:李科长@127.0.0.1")
    # The server swaps to the new index on its own once the change is complete (within a few seconds).
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline and "五十万元" not in ask_new_question(admin_server):
        time.sleep(0.5)
    assert "五十万元" in ask_new_question(admin_server)
    page.context.close()


def ask_new_question(server: LiveServer) -> str:
    response = httpx.post(server.base_url + "/api/ask", json={"question": "首贷贴息最高多少？"}, timeout=60)
    return response.json()["answer"]


def test_a_wrong_token_shows_the_reason_and_changes_nothing(browser: Browser, admin_server: LiveServer,  # noqa: F811
                                                            tmp_path: Path) -> None:
    before = httpx.get(admin_server.base_url + "/api/documents/-/records", timeout=30).json()
    page = open_admin_tab(browser, admin_server)
    page.fill("#kb-token", "wrong")
    page.set_input_files("#kb-file", str(write_docx(tmp_path / "x.docx", LOCAL_NOTICE)))
    page.click("#kb-preview")
    expect(page.locator("#kb-status")).to_contain_text("运维令牌无效")
    expect(page.locator("#kb-preview-box")).to_be_hidden()
    assert httpx.get(admin_server.base_url + "/api/documents/-/records", timeout=30).json() == before
    page.context.close()


def test_without_a_token_configured_the_tab_says_changes_are_off(browser: Browser, live_server: LiveServer) -> None:  # noqa: F811
    page = open_admin_tab(browser, live_server)
    expect(page.locator("#kb-admin-off")).to_contain_text("POLICY_QA_ADMIN_TOKEN")
    assert page.locator("#kb-file").count() == 0
    page.context.close()
