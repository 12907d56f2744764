"""API keys, rate limits and feedback storage against real `policy-qa serve` processes on 127.0.0.1.

Two servers, each configured the way an operator would through the environment:
- `keyed`: POLICY_QA_API_KEYS with two keys and a tiny write limit (2 per minute), so the limit is
  reached by counting requests, not by waiting;
- `writes_only`: a key that guards writes only, a tiny read limit, and a database path that is a
  directory (feedback storage that cannot be written).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from live_server import LiveServer

from assistant.config import Settings
from assistant.serving.feedback import FeedbackStore

QUESTION = "简易注销怎么办理？"
KEY_A, KEY_B = "key-alpha-0123456789", "key-beta-9876543210"
ADMIN_TOKEN = "operator-token-42"
WRITE_LIMIT = 2  # tiny, so the third write in a minute is refused without any waiting
READ_LIMIT = 3
FEEDBACK = {"rating": "like", "question": QUESTION, "answer": "答案 [1]"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("keyed"), index_settings.index_dir,
                        POLICY_QA_API_KEYS=f"{KEY_A}, {KEY_B}", POLICY_QA_ADMIN_TOKEN=ADMIN_TOKEN,
                        POLICY_QA_RATE_LIMIT_WRITES=f"{WRITE_LIMIT}/minute").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def writes_only(index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("writes-only")
    server = LiveServer(workdir, index_settings.index_dir, POLICY_QA_API_KEYS=KEY_A,
                        POLICY_QA_API_KEYS_FOR_READS="false", POLICY_QA_RATE_LIMIT_READS=f"{READ_LIMIT}/minute")
    unwritable = workdir / "database-is-a-directory"
    unwritable.mkdir()
    server.env["POLICY_QA_DB_PATH"] = str(unwritable)
    server.start()
    yield server
    server.stop()


# ---- API keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/ask", {"question": QUESTION}),
    ("POST", "/api/ask/stream", {"question": QUESTION}),
    ("GET", "/api/documents", None),
    ("GET", "/api/no-such-endpoint", None),  # no probing for paths without a key
])
def test_without_a_key_the_api_is_a_chinese_401(keyed: LiveServer, method: str, path: str, body: dict | None) -> None:
    response = httpx.request(method, keyed.base_url + path, json=body, timeout=60)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "需要 API 密钥" in response.json()["detail"]


def test_a_wrong_key_is_refused_and_a_right_one_answers(keyed: LiveServer) -> None:
    url = keyed.base_url + "/api/ask"
    wrong = httpx.post(url, json={"question": QUESTION}, headers=bearer("guess"), timeout=60)
    assert wrong.status_code == 401 and "API 密钥无效" in wrong.json()["detail"]
    basic = httpx.post(url, json={"question": QUESTION}, headers={"Authorization": f"Basic {KEY_A}"}, timeout=60)
    assert basic.status_code == 401
    for key in (KEY_A, KEY_B):
        answered = httpx.post(url, json={"question": QUESTION}, headers=bearer(key), timeout=60)
        assert answered.status_code == 200 and answered.json()["citations"]


def test_the_operator_token_passes_too(keyed: LiveServer) -> None:
    """'A key or the admin token': the 知识库管理 tab sends only X-Admin-Token."""
    url = keyed.base_url + "/api/documents"
    assert httpx.get(url, headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=30).status_code == 200
    assert httpx.get(url, headers={"X-Admin-Token": "guess"}, timeout=30).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30).status_code == 401


def test_openai_clients_get_an_openai_shaped_401(keyed: LiveServer) -> None:
    raw = httpx.post(keyed.base_url + "/v1/chat/completions",
                     json={"messages": [{"role": "user", "content": QUESTION}]}, timeout=60)
    assert raw.status_code == 401
    error = raw.json()["error"]
    assert error["code"] == "invalid_api_key" and "需要 API 密钥" in error["message"] and error["type"]
    client = openai.OpenAI(base_url=keyed.base_url + "/v1", api_key="wrong", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert "API 密钥无效" in caught.value.message
    good = openai.OpenAI(base_url=keyed.base_url + "/v1", api_key=KEY_B, max_retries=0, timeout=60)
    completion = good.chat.completions.create(model="policy-qa", messages=[{"role": "user", "content": QUESTION}])
    assert completion.model_extra["citations"]


def test_health_metrics_and_docs_stay_open(keyed: LiveServer) -> None:
    with httpx.Client(base_url=keyed.base_url, timeout=60) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/metrics").status_code == 200
        assert http.get("/docs").status_code == 200
        schema = http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in schema["paths"]["/api/ask"]["post"]["security"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


# ---- rate limits -------------------------------------------------------------------------------


def test_writes_are_rate_limited_per_key_with_retry_after(keyed: LiveServer) -> None:
    url = keyed.base_url + "/api/feedback"
    assert httpx.post(url, json=FEEDBACK, timeout=30).status_code == 401  # a write always needs a key
    statuses = [httpx.post(url, json=FEEDBACK, headers=bearer(KEY_A), timeout=30).status_code
                for _ in range(WRITE_LIMIT)]
    assert statuses == [201] * WRITE_LIMIT
    refused = httpx.post(url, json=FEEDBACK, headers=bearer(KEY_A), timeout=30)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60  # the window is one minute
    assert "请求过于频繁" in refused.json()["detail"]
    # Another key is another client: its own budget is untouched.
    assert httpx.post(url, json=FEEDBACK, headers=bearer(KEY_B), timeout=30).status_code == 201
    # Reads are not limited by default, even for the limited key.
    assert httpx.get(keyed.base_url + "/api/documents", headers=bearer(KEY_A), timeout=30).status_code == 200
    assert len(FeedbackStore(keyed.db_path).list()) == WRITE_LIMIT + 1


def test_reads_can_be_limited_too_and_v1_gets_the_openai_shape(writes_only: LiveServer) -> None:
    with httpx.Client(base_url=writes_only.base_url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200  # not counted: health checks are never limited
        statuses = [http.get("/api/documents").status_code for _ in range(READ_LIMIT)]
        assert statuses == [200] * READ_LIMIT  # reads need no key on this server
        refused = http.get("/v1/models")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and "请求过于频繁" in error["message"]
        assert http.get("/healthz").status_code == 200


# ---- feedback storage ----------------------------------------------------------------------------


def test_unwritable_feedback_storage_is_a_clear_503_and_healthz_says_so(writes_only: LiveServer) -> None:
    url = writes_only.base_url + "/api/feedback"
    assert httpx.post(url, json=FEEDBACK, timeout=30).status_code == 401  # reads are open, writes are not
    response = httpx.post(url, json=FEEDBACK, headers=bearer(KEY_A), timeout=30)
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "反馈暂时无法保存" in detail and "目录" in detail
    assert str(writes_only.env["POLICY_QA_DB_PATH"]) not in response.text  # no server paths in replies
    health = httpx.get(writes_only.base_url + "/healthz", timeout=30)
    assert health.status_code == 200  # questions are still answered
    body = health.json()
    assert body["status"] == "degraded"
    assert body["storage"]["feedback"]["writable"] is False and body["storage"]["feedback"]["detail"]
    assert body["index"]["clauses"] > 0


def test_feedback_over_the_size_cap_is_a_413(keyed: LiveServer) -> None:
    payload = {**FEEDBACK, "answer": "很长的答案。" * 2000}  # ~36 KB of UTF-8 JSON, under the API's 64 KB
    response = httpx.post(keyed.base_url + "/api/feedback", json=payload, headers=bearer(KEY_B), timeout=30)
    assert response.status_code == 413 and "请求体过大：反馈上限 16 KB" in response.json()["detail"]


def test_healthz_reports_writable_storage(keyed: LiveServer) -> None:
    body = httpx.get(keyed.base_url + "/healthz", timeout=30).json()
    assert body["status"] == "ok" and body["storage"]["feedback"] == {"writable": True, "detail": None}
