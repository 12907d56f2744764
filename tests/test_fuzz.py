"""Malformed and adversarial questions (tests/data/fuzz_questions.json) on every surface: an answer or a
clear 4xx, never a 500, a traceback, a half-ended stream or a dropped keep-alive connection."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from assistant.errors import QuestionError
from assistant.numerals import int_to_cn
from assistant.question import clean_text, validate_question

FUZZ = json.loads((Path(__file__).parent / "data" / "fuzz_questions.json").read_text("utf-8"))["questions"]


@pytest.mark.parametrize("question", FUZZ)
def test_the_assistant_answers_or_refuses_cleanly(assistant, question: str) -> None:
    try:
        answer = assistant.ask(question)
    except QuestionError as exc:
        assert str(exc)  # a message that says what to change
        return
    answer.model_dump_json()  # encodable: no surrogate survives into the answer
    assert answer.answer


@pytest.mark.parametrize(("number", "written"), [(0, "零"), (10, "十"), (240, "二百四十"), (10000, "一万"),
                                                 (10001, "一万零一"), (10**17, str(10**17))])
def test_numbers_are_written_for_every_edge(number: int, written: str) -> None:
    assert int_to_cn(number) == written


def test_out_of_range_and_unnumbered_references_explain_themselves(assistant) -> None:
    assert "没有第一万条" in assistant.ask("登记条例第10000条").answer
    assert "没有第零条" in assistant.ask("公司法第0条").answer
    plan = assistant.ask("行动方案第一条")
    assert "不按“第X条”编号" in plan.answer and plan.abstained


def test_broken_text_is_cleaned_not_refused() -> None:
    assert clean_text("简易注销\ud83d怎么\x00办理") == "简易注销怎么办理"
    with pytest.raises(QuestionError, match="问题为空"):
        validate_question("\ud83d\u0007", 500)


# ---- the live server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(live_server) -> httpx.Client:  # noqa: ANN001
    with httpx.Client(base_url=live_server.base_url, timeout=60) as client:
        yield client


def _body(question: str) -> bytes:
    # json.dumps keeps a lone surrogate as the escape "\ud83d", exactly what a broken client sends.
    return json.dumps({"question": question}).encode()


@pytest.mark.parametrize("question", FUZZ)
def test_api_ask_never_fails_and_keeps_the_connection(http: httpx.Client, question: str) -> None:
    headers = {"content-type": "application/json"}
    response = http.post("/api/ask", content=_body(question), headers=headers)
    assert response.status_code in (200, 422), response.text
    assert "Traceback" not in response.text
    # The same keep-alive connection serves the next request.
    assert http.get("/api/documents").status_code == 200


@pytest.mark.parametrize("question", FUZZ)
def test_api_stream_ends_with_done_or_is_refused(http: httpx.Client, question: str) -> None:
    response = http.post("/api/ask/stream", content=_body(question), headers={"content-type": "application/json"})
    if response.status_code == 422:
        return
    assert response.status_code == 200, response.text
    events = [line.removeprefix("event:").strip() for line in response.text.splitlines() if line.startswith("event:")]
    assert events and events[-1] == "done", events


@pytest.mark.parametrize("question", ["行动方案第一条", "登记条例第10000条", "公司法第0条", "\ud83d注销"])
def test_openai_surface_answers_the_references_that_crashed(http: httpx.Client, question: str) -> None:
    body = json.dumps({"model": "policy-qa", "messages": [{"role": "user", "content": question}]}).encode()
    response = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


# Nesting as deep as fits under the body limit (64 KB; feedback 16 KB), so that the JSON parser, not
# the limit, meets it: an array level takes 2 bytes, an object level 6 ('{"a":' and '}').
BODY_LIMITS = {"/api/ask": 64 * 1024, "/api/ask/stream": 64 * 1024, "/v1/chat/completions": 64 * 1024,
               "/api/feedback": 16 * 1024}
LEVEL_BYTES = {"array": 2, "object": 6}


@pytest.mark.parametrize("path", list(BODY_LIMITS))
@pytest.mark.parametrize("shape", list(LEVEL_BYTES))
def test_deeply_nested_bodies_are_refused_cleanly(http: httpx.Client, path: str, shape: str) -> None:
    depth = (BODY_LIMITS[path] - 100) // LEVEL_BYTES[shape]
    nested = "[" * depth + "]" * depth if shape == "array" else '{"a":' * depth + "1" + "}" * depth
    body = ('{"question": ' + nested + "}").encode()
    assert len(body) < BODY_LIMITS[path]
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:200]
    assert "Traceback" not in response.text and "RecursionError" not in response.text
    assert http.get("/api/documents").status_code == 200  # the connection and the server are still fine
