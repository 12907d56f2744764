"""/api/documents against a real `policy-qa serve`: the operator token, preview then confirm, versions,
retirement, size limits, and an upload while clients keep asking (no request may fail)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from kb_files import LOCAL_NOTICE, REGISTERED_CAPITAL_ID, revised_registered_capital, write_docx
from live_server import AskingClients, LiveServer

from assistant.config import Settings

TOKEN = "test-operator-token"
GUARD_S = 120.0  # bounds waits for the index swap; not a speed check
NEW_QUESTION = "中小企业首贷贴息最高多少？"


@pytest.fixture(scope="module")
def admin_server(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    work = tmp_path_factory.mktemp("admin")
    shutil.copytree(index_settings.corpus_dir, work / "corpus")
    shutil.copytree(index_settings.index_dir, work / "index")
    server = LiveServer(work, work / "index", POLICY_QA_CORPUS_DIR=str(work / "corpus"),
                        POLICY_QA_DB_PATH=str(work / "kb.sqlite3"), POLICY_QA_ADMIN_TOKEN=TOKEN,
                        POLICY_QA_MAX_UPLOAD_MB="2").start()
    server.work = work
    yield server
    server.stop()


def upload(server: LiveServer, name: str, data: bytes, token: str | None = TOKEN, **params: str) -> httpx.Response:
    headers = {"X-Admin-Token": token} if token else {}
    return httpx.post(server.base_url + "/api/documents", params=params, headers=headers,
                      files={"file": (name, data)}, timeout=GUARD_S)


def cited_ids(server: LiveServer, question: str, **fields: str) -> list[str]:
    response = httpx.post(server.base_url + "/api/ask", json={"question": question, **fields}, timeout=60)
    assert response.status_code == 200, response.text
    return [c["clause_id"] for c in response.json()["citations"]]


def wait_until(condition, seconds: float = GUARD_S) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def test_changes_are_off_without_a_configured_token(live_server: LiveServer, tmp_path: Path) -> None:
    response = upload(live_server, "n.docx", write_docx(tmp_path / "n.docx", LOCAL_NOTICE).read_bytes())
    assert response.status_code == 403 and "POLICY_QA_ADMIN_TOKEN" in response.json()["detail"]
    assert httpx.get(live_server.base_url + "/api/documents", timeout=30).status_code == 200  # reading stays open


def test_a_wrong_token_is_refused(admin_server: LiveServer, tmp_path: Path) -> None:
    data = write_docx(tmp_path / "n.docx", LOCAL_NOTICE).read_bytes()
    for token in (None, "guess"):
        response = upload(admin_server, "n.docx", data, token=token)
        assert response.status_code == 401 and "X-Admin-Token" in response.json()["detail"]


def test_an_upload_while_clients_ask_is_served_with_no_failed_request(admin_server: LiveServer, tmp_path: Path) -> None:
    data = write_docx(tmp_path / "n.docx", LOCAL_NOTICE).read_bytes()
    preview = upload(admin_server, "贴息办法.docx", data)
    assert preview.status_code == 200, preview.text
    assert preview.json()["doc_number"] == "厦府办规〔2024〕5号" and preview.json()["clause_count"] == 7
    assert not list((admin_server.work / "corpus").rglob("*tie-xi*")), "a preview writes nothing"

    with AskingClients(admin_server.base_url, "简易注销怎么办理？", 4) as clients:
        added = upload(admin_server, "贴息办法.docx", data, confirm="true")
        assert added.status_code == 200, added.text
        doc_id = added.json()["preview"]["doc_id"]
        assert wait_until(lambda: f"{doc_id}#3" in cited_ids(admin_server, NEW_QUESTION))
    assert clients.failures == [] and clients.answered > 0
    history = httpx.get(admin_server.base_url + "/api/documents/-/history", timeout=30).json()
    assert history[0]["doc_id"] == doc_id and history[0]["actor"] == "api:admin@127.0.0.1"


def test_a_new_version_then_its_retirement(admin_server: LiveServer, tmp_path: Path) -> None:
    question = "公司被吊销营业执照后多久未注销会被公告？公告期限多长？"
    data = write_docx(tmp_path / "r.docx", revised_registered_capital()).read_bytes()
    added = upload(admin_server, "修订.docx", data, confirm="true")
    assert added.status_code == 200, added.text
    new_id = added.json()["preview"]["doc_id"]
    assert added.json()["preview"]["replaces"] == REGISTERED_CAPITAL_ID
    assert wait_until(lambda: f"{new_id}#8" in cited_ids(admin_server, question))
    assert f"{REGISTERED_CAPITAL_ID}#8" in cited_ids(admin_server, question, as_of="2025-01-01")
    versions = httpx.get(f"{admin_server.base_url}/api/documents/{new_id}/versions", timeout=30).json()
    assert [v["doc_id"] for v in versions] == [REGISTERED_CAPITAL_ID, new_id]

    retired = httpx.delete(f"{admin_server.base_url}/api/documents/{new_id}", timeout=GUARD_S,
                           headers={"X-Admin-Token": TOKEN, "X-Operator": quote("王科员")})
    assert retired.status_code == 200, retired.text
    assert wait_until(lambda: f"{REGISTERED_CAPITAL_ID}#8" in cited_ids(admin_server, question))
    assert not any(c.startswith(new_id) for c in cited_ids(admin_server, question))
    history = httpx.get(admin_server.base_url + "/api/documents/-/history", timeout=30).json()
    assert history[0]["action"] == "retire" and history[0]["actor"] == "api:王科员@127.0.0.1"


def test_bad_uploads_get_their_status_and_change_nothing(admin_server: LiveServer) -> None:
    records = httpx.get(admin_server.base_url + "/api/documents/-/records", timeout=30).json()
    too_big = upload(admin_server, "big.pdf", b"%PDF-1.7\n" + b"0" * (50 * 1024 * 1024), confirm="true")  # 50 MB
    assert too_big.status_code == 413 and "上限" in too_big.json()["detail"]
    scanned = upload(admin_server, "empty.pdf", b"", confirm="true")
    assert scanned.status_code == 422 and "知识库未改动" in scanned.json()["detail"]
    assert httpx.get(admin_server.base_url + "/api/documents/-/records", timeout=30).json() == records


def test_as_of_must_be_a_date(admin_server: LiveServer) -> None:
    response = httpx.post(admin_server.base_url + "/api/ask", json={"question": "简易注销", "as_of": "2021-13-01"},
                          timeout=30)
    assert response.status_code == 422


def test_the_scope_model_is_recalibrated_after_a_change(admin_server: LiveServer) -> None:
    """The upload tests above each start a recalibration in the background; it lands in tuning.json
    for the index that is serving, which the server then reloads."""
    import json

    def refit_for_current_index() -> bool:
        manifest = json.loads((admin_server.work / "index" / "manifest.json").read_text())
        report = json.loads((admin_server.work / "index" / "tuning.json").read_text())["report"]
        return report.get("scope_refit_for") == manifest["corpus_hash"]

    assert wait_until(refit_for_current_index)


def test_a_rewritten_tuning_file_is_a_new_index_to_the_server(index_settings: Settings, tmp_path: Path) -> None:
    from assistant.answering.fitted import Tuning
    from assistant.serving.deps import AssistantHolder

    shutil.copytree(index_settings.index_dir, tmp_path / "index")
    holder = AssistantHolder(index_settings.model_copy(update={"index_dir": tmp_path / "index"}))
    before = holder._manifest_stamp()  # noqa: SLF001 - the reload trigger itself is under test
    Tuning.load(tmp_path / "index").save(tmp_path / "index")
    assert holder._manifest_stamp() != before  # noqa: SLF001
