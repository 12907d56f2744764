"""In-process API tests (TestClient): error shapes, the missing-index 503, feedback storage.

The end-to-end tests against a real uvicorn server are in test_api_server.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.config import Settings
from assistant.schema import Ask
from assistant.serving.api import AskCall, ask_stream, create_app
from assistant.serving.api_errors import describe_error, validation_message
from assistant.serving.feedback import FeedbackStore
from assistant.serving.openai_api import ChatCall, _stream_chunks


@pytest.fixture
def no_index_settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "no-index", feedback_path=tmp_path / "feedback.jsonl",
                    db_path=tmp_path / "policy_qa.sqlite3")


@pytest.fixture
def no_index_client(no_index_settings: Settings):
    with TestClient(create_app(no_index_settings)) as client:  # runs the lifespan
        yield client


def test_missing_index_is_503_with_build_hint(no_index_client: TestClient) -> None:
    for method, path, body in [
        ("GET", "/healthz", None),
        ("POST", "/api/ask", {"question": "简易注销怎么办理？"}),
        ("GET", "/api/search?q=简易注销", None),
        ("GET", "/api/documents", None),
        ("GET", "/api/clauses/x%231", None),
    ]:
        response = no_index_client.request(method, path, json=body)
        assert response.status_code == 503, path
        assert "policy-qa build" in response.json()["detail"], path


def test_missing_index_on_openai_endpoint_uses_openai_error_shape(no_index_client: TestClient) -> None:
    response = no_index_client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "你好"}]})
    assert response.status_code == 503
    assert "policy-qa build" in response.json()["error"]["message"]


def test_stream_with_missing_index_is_503_before_any_event(no_index_client: TestClient) -> None:
    response = no_index_client.post("/api/ask/stream", json={"question": "简易注销怎么办理？"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")


def test_validation_runs_before_the_index_is_needed(no_index_client: TestClient) -> None:
    response = no_index_client.post("/api/ask", json={"question": 42})
    assert response.status_code == 422
    assert "question：应为字符串" in response.json()["detail"]


def test_feedback_works_without_an_index(no_index_client: TestClient, no_index_settings: Settings) -> None:
    response = no_index_client.post(
        "/api/feedback", json={"rating": "dislike", "question": "简易注销怎么办理？", "answer": "……", "reason": "太短"}
    )
    assert response.status_code == 201
    stored = FeedbackStore(no_index_settings.db_path).list()
    assert [(e.rating, e.reason, e.source) for e in stored] == [("dislike", "太短", "api")]
    assert not no_index_settings.feedback_path.exists()  # the legacy JSONL is never written


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        ({"type": "missing", "loc": ("body", "question")}, "缺少必填字段"),
        ({"type": "string_too_long", "ctx": {"max_length": 20}}, "过长：最多 20 个字符"),
        ({"type": "less_than_equal", "ctx": {"le": 20}}, "应不大于 20"),
        ({"type": "too_long", "ctx": {"max_length": 20}}, "条目过多：最多 20 项"),
        ({"type": "value_error", "ctx": {"error": ValueError("自定义")}}, "自定义"),
        ({"type": "something_new", "msg": "fallback text"}, "fallback text"),
    ],
)
def test_describe_error(err: dict, expected: str) -> None:
    assert describe_error(err) == expected


def test_validation_message_names_the_field_path() -> None:
    message, fields = validation_message(
        [{"type": "literal_error", "loc": ("body", "history", 0, "role"), "ctx": {"expected": "'user' or 'assistant'"}}]
    )
    assert message == "请求有误：history[0].role：应为以下之一：'user' or 'assistant'"
    assert fields[0].loc == ["body", "history", 0, "role"]


def test_feedback_store_survives_reopen_and_folds_reasons(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "policy_qa.sqlite3"
    first = FeedbackStore(path).add("like", "问1", "答1 [1]", ["doc#1"])
    second = FeedbackStore(path).add("dislike", "问2", "答2", [])
    FeedbackStore(path).add_reason(second.id, "  引用不对  ")
    FeedbackStore(path).add_reason(second.id, "  引用的条款不对  ")  # the newest reason wins
    FeedbackStore(path).add_reason(first.id, "   ")  # blank reasons are ignored
    FeedbackStore(path).add_reason("no-such-id", "无处可挂")  # an unknown id changes nothing
    entries = FeedbackStore(path).list()
    assert [(e.id, e.rating, e.reason, e.clause_ids) for e in entries] == [
        (first.id, "like", None, ["doc#1"]),
        (second.id, "dislike", "引用的条款不对", []),
    ]
    with sqlite3.connect(path) as connection:
        question, clause_ids = connection.execute("SELECT question, clause_ids FROM feedback ORDER BY seq").fetchone()
    assert question == "问1" and json.loads(clause_ids) == ["doc#1"]  # plain columns a maintainer can query


def test_feedback_store_lists_nothing_when_the_database_is_missing(tmp_path: Path) -> None:
    assert FeedbackStore(tmp_path / "none.sqlite3").list() == []
    assert not (tmp_path / "none.sqlite3").exists()


# A failure after the stream has begun must end it with an error event, not a dropped connection.
# The request models refuse an unknown mode up front, so these hand the real assistant one directly
# (an Ask built without validation).
POETRY = Ask.model_construct(question="简易注销怎么办理？", history=(), top_k=None, method="hybrid", mode="poetry",
                             as_of=None, doc_id=None)


def test_stream_failure_mid_way_is_an_error_event(assistant) -> None:  # noqa: ANN001
    events = list(ask_stream(AskCall(assistant, POETRY)))
    assert [e.event for e in events] == ["error"]
    payload = json.loads(events[0].raw_data)
    assert payload["type"] == "QuestionError" and "poetry" in payload["message"]


def test_openai_stream_failure_mid_way_is_an_error_chunk_without_done(assistant) -> None:  # noqa: ANN001
    call = ChatCall(assistant, POETRY, "policy-qa", True)
    chunks = [c.decode() for c in _stream_chunks(call)]
    assert len(chunks) == 1 and chunks[0].startswith("data: ")
    assert "poetry" in json.loads(chunks[0][len("data: "):])["error"]["message"]


def test_index_built_after_start_is_picked_up(index_settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import assistant.serving.deps

    monkeypatch.setattr(assistant.serving.deps, "RELOAD_RETRY_S", 0.0)
    settings = index_settings.model_copy(update={"index_dir": tmp_path / "index",
                                                 "feedback_path": tmp_path / "feedback.jsonl",
                                                 "db_path": tmp_path / "policy_qa.sqlite3"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 503
        shutil.copytree(index_settings.index_dir, settings.index_dir)  # what `policy-qa build` leaves
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["index"]["clauses"] > 0


def test_legacy_feedback_survives_a_torn_line_and_a_damaged_byte(tmp_path: Path) -> None:
    """The JSONL a crash left behind is imported line by line: the damaged lines only are lost."""
    legacy = tmp_path / "feedback.jsonl"

    def rating(id_: str) -> bytes:
        return json.dumps({"kind": "rating", "id": id_, "created_at": "2024-05-01T08:00:00+00:00", "rating": "like",
                           "question": f"反馈{id_}", "answer": "答"}, ensure_ascii=False).encode() + b"\n"

    legacy.write_bytes(rating("first") + b'{"kind": "rating", "id": "torn", "rating": "li\n'  # a crash mid-write
                       + rating("second") + b'{"kind": "rating", "question": "\xff\xfe"}\n'  # not UTF-8
                       + rating("third") + b'{"kind": "rating", "id": "torn2", "ra')  # a torn last line
    store = FeedbackStore(tmp_path / "policy_qa.sqlite3", legacy_path=legacy)
    fourth = store.add("like", "第四条反馈", "答")
    assert [e.id for e in store.list()] == ["first", "second", "third", fourth.id]


def test_policy_uploads_are_not_held_to_the_64_kb_api_limit(no_index_settings: Settings) -> None:
    """/api/documents takes files up to POLICY_QA_MAX_UPLOAD_MB; the API's 64 KB cap must not refuse them."""
    from assistant.serving.documents_api import router as documents_router

    app = create_app(no_index_settings.model_copy(update={"max_upload_mb": 1.0}))
    app.include_router(documents_router)
    with TestClient(app) as client:
        upload = {"file": ("plan.txt", "第一条 测试。\n".encode() * 20_000, "text/plain")}  # ~380 KB
        assert client.post("/api/documents", files=upload).status_code == 403  # reached the route: no token set
        too_big = {"file": ("plan.txt", b"x" * 2_000_000, "text/plain")}
        response = client.post("/api/documents", files=too_big)
        assert response.status_code == 413 and "文件过大：上限为 1 MB" in response.json()["detail"]
        assert client.post("/api/ask", json={"question": "问" * 40_000}).status_code == 413  # elsewhere: 64 KB


@pytest.fixture
def indexed_client(index_settings: Settings, tmp_path: Path):
    settings = index_settings.model_copy(update={"db_path": tmp_path / "policy_qa.sqlite3"})
    with TestClient(create_app(settings)) as client:
        yield client, settings


def test_an_operator_label_is_stored_and_read_back_as_training_data(indexed_client) -> None:  # noqa: ANN001
    from urllib.parse import quote

    from assistant.evaluation.tuning import operator_questions
    from assistant.knowledge.labels import operator_labels

    client, settings = indexed_client
    body = {"question": "营业执照丢了去哪补", "verdict": "answers", "clause_id": "shichang-zhuti-dengji-guanli-tiaoli#37"}
    response = client.post("/api/labels", json=body, headers={"X-Operator": quote("王科员")})
    assert response.status_code == 201 and response.json()["operator"] == "王科员"
    assert client.post("/api/labels", json={"question": "社保断缴怎么办", "verdict": "none"}).status_code == 201
    assert operator_labels(settings.db_path) == [
        ("营业执照丢了去哪补", ["shichang-zhuti-dengji-guanli-tiaoli#37"]), ("社保断缴怎么办", [])]
    training = operator_questions(settings.db_path)  # what the next build's tuning reads
    assert [(q.kind, q.gold, q.split) for q in training] == [
        ("answerable", ["shichang-zhuti-dengji-guanli-tiaoli#37"], "operator"), ("unanswerable", [], "operator")]


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"question": "营业执照丢了", "verdict": "answers"}, 422, "clause_id"),
    ({"question": "营业执照丢了", "verdict": "none", "clause_id": "gongsi-fa#1"}, 422, "clause_id"),
    ({"question": "营业执照丢了", "verdict": "answers", "clause_id": "no-such#1"}, 404, "no-such#1"),
    ({"question": "", "verdict": "none"}, 422, "question"),
])
def test_a_bad_label_is_refused_with_the_reason_and_nothing_is_stored(indexed_client, body: dict, status: int,
                                                                      says: str) -> None:  # noqa: ANN001
    from assistant.knowledge.labels import LabelStore

    client, settings = indexed_client
    response = client.post("/api/labels", json=body)
    assert response.status_code == status and says in json.dumps(response.json(), ensure_ascii=False)
    assert LabelStore(settings.db_path).all() == []


def test_as_of_reaches_retrieval_from_every_adapter(indexed_client) -> None:  # noqa: ANN001
    """The same past day through /api/ask, /v1/chat/completions (an extension field like citations) and
    /api/search: each answers from the 2020 text in force that day; today's answer cites the 2025 one."""
    client, _ = indexed_client
    question = "机关事业单位从中小企业采购货物，付款期限最长多少天？"
    old, new = "baozhang-zhongxiao-qiye-kuanxiang-zhifu-tiaoli-2020", "baozhang-zhongxiao-qiye-kuanxiang-zhifu-tiaoli"
    api = client.post("/api/ask", json={"question": question, "as_of": "2024-06-01"}).json()
    assert {c["doc_id"] for c in api["citations"]} == {old}
    v1 = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}],
                                                   "as_of": "2024-06-01", "temperature": 0.3}).json()
    assert {c["doc_id"] for c in v1["citations"]} == {old}
    today = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}).json()
    assert new in {c["doc_id"] for c in today["citations"]}
    hits = client.get("/api/search", params={"q": "款项支付条例第九条", "as_of": "2024-06-01", "k": 3}).json()
    assert hits[0]["citation"]["clause_id"] == f"{old}#9"  # the exact reference, in that day's version
    assert all(h["citation"]["doc_id"] != new for h in hits)
    refused = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}],
                                                        "as_of": 20240601})
    assert refused.status_code == 422 and "YYYY-MM-DD" in refused.json()["error"]["message"]
