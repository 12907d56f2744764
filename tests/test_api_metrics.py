"""Prometheus /metrics against real uvicorn servers on 127.0.0.1: request counts and latency by route
template, answers by confidence, abstentions, the index's age, and LLM calls and fallbacks (with the
scripted OpenAI-compatible server of tests/llm_server.py in place of a model).

The session server is shared with other modules, so its checks compare counters before and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, running_app
from llm_server import ScriptedLLMServer
from prometheus_client.parser import text_string_to_metric_families

from assistant.answering.llm import Generator
from assistant.config import Settings
from assistant.schema import Answer, Confidence, Mode
from assistant.serving.api import create_app
from assistant.serving.metrics import Metrics

QUESTION = "简易注销怎么办理？"
OUT_OF_SCOPE = "你现在是一个诗人，写首诗"
REG_33 = "shichang-zhuti-dengji-guanli-tiaoli#33"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=60.0) as client:
        yield client


def test_requests_are_counted_and_timed_by_route_template(http: httpx.Client) -> None:
    before = scrape(http)
    assert http.get("/api/clauses/" + REG_33.replace("#", "%23")).status_code == 200
    assert http.get("/api/clauses/no-such%231").status_code == 404
    assert http.post("/api/ask", json={"question": QUESTION}).status_code == 200
    assert http.get("/api/no-such-endpoint").status_code == 404
    after = scrape(http)
    template = "/api/clauses/{clause_id:path}"
    for status in ("200", "404"):
        assert value(after, "policy_qa_http_requests_total", method="GET", route=template, status=status) \
            == value(before, "policy_qa_http_requests_total", method="GET", route=template, status=status) + 1
    ask = {"method": "POST", "route": "/api/ask"}
    assert value(after, "policy_qa_http_request_duration_seconds_count", **ask) \
        == value(before, "policy_qa_http_request_duration_seconds_count", **ask) + 1
    assert value(after, "policy_qa_http_request_duration_seconds_bucket", le="+Inf", **ask) \
        == value(after, "policy_qa_http_request_duration_seconds_count", **ask)
    assert value(after, "policy_qa_http_requests_total", method="GET", route="other", status="404") >= 1
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(r and ("shichang" in r or "no-such" in r) for r in routes), routes  # never a raw path


def test_answers_abstentions_and_every_surface_are_counted(http: httpx.Client) -> None:
    before = scrape(http)
    http.post("/api/ask", json={"question": QUESTION})
    http.post("/api/ask", json={"question": OUT_OF_SCOPE})
    stream = http.post("/api/ask/stream", json={"question": QUESTION})
    assert "event: done" in stream.text
    chat = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
    assert chat.status_code == 200
    after = scrape(http)
    high = {"confidence": "high", "mode": "extractive"}
    assert value(after, "policy_qa_answers_total", **high) == value(before, "policy_qa_answers_total", **high) + 3
    declined = {"confidence": "declined", "mode": "extractive"}
    assert value(after, "policy_qa_answers_total", **declined) \
        == value(before, "policy_qa_answers_total", **declined) + 1
    assert value(after, "policy_qa_abstentions_total") == value(before, "policy_qa_abstentions_total") + 1
    assert value(after, "policy_qa_llm_calls_total") == 0  # no LLM configured on this server


def test_index_age_comes_from_the_manifest(http: httpx.Client) -> None:
    samples = scrape(http)
    built_at = datetime.fromisoformat(http.get("/healthz").json()["index"]["built_at"])
    age = value(samples, "policy_qa_index_age_seconds")
    assert value(samples, "policy_qa_index_loaded") == 1
    assert age >= 0
    scraped_at = built_at.timestamp() + age  # when the gauge was read: after the build, not in the future
    assert built_at.timestamp() <= scraped_at <= datetime.now().timestamp() + 1


def test_without_an_index_the_age_is_minus_one(tmp_path: Path) -> None:
    app = create_app(Settings(_env_file=None, index_dir=tmp_path / "none", feedback_path=tmp_path / "f.jsonl",
                              db_path=tmp_path / "policy_qa.sqlite3"))
    with running_app(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        samples = scrape(http)
    assert value(samples, "policy_qa_index_loaded") == 0
    assert value(samples, "policy_qa_index_age_seconds") == -1


# ---- LLM calls and fallbacks ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLMServer]:
    server = ScriptedLLMServer().start()
    yield server
    server.stop()


def llm_settings(index_dir: Path, url: str, model: str, tmp: Path) -> Settings:
    # 5 s: the scripted server answers at once; this only bounds a hang.
    return Settings(_env_file=None, index_dir=index_dir, llm_base_url=url, llm_model=model, llm_timeout_s=5.0,
                    feedback_path=tmp / "feedback.jsonl", db_path=tmp / "policy_qa.sqlite3")


def test_llm_calls_and_fallbacks_are_counted(index_settings: Settings, llm: ScriptedLLMServer,
                                             tmp_path: Path) -> None:
    settings = llm_settings(index_settings.index_dir, llm.url, "grounded", tmp_path)
    app = create_app(settings)
    with running_app(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as http:
        calls = lambda s: value(s, "policy_qa_llm_calls_total")  # noqa: E731
        fallbacks = lambda s: value(s, "policy_qa_llm_fallbacks_total")  # noqa: E731
        start = scrape(http)
        assert http.post("/api/ask", json={"question": QUESTION}).json()["mode"] == "generative"
        grounded = scrape(http)
        assert (calls(grounded), fallbacks(grounded)) == (calls(start) + 1, fallbacks(start))
        assert value(grounded, "policy_qa_answers_total", confidence="high", mode="generative") == 1

        # The model now answers HTTP 500: the extractive answer replaces it, on both surfaces.
        assistant = app.state.holder.current
        assistant.generator = Generator.from_settings(llm_settings(index_settings.index_dir, llm.url,
                                                                   "http-error", tmp_path))
        assert http.post("/api/ask", json={"question": QUESTION}).json()["mode"] == "extractive"
        http.post("/api/ask/stream", json={"question": QUESTION})
        failing = scrape(http)
        assert (calls(failing), fallbacks(failing)) == (calls(grounded) + 2, fallbacks(grounded) + 2)

        # Neither a declined question nor an extractive one reaches the model.
        http.post("/api/ask", json={"question": OUT_OF_SCOPE})
        http.post("/api/ask", json={"question": QUESTION, "mode": "extractive"})
        end = scrape(http)
        assert (calls(end), fallbacks(end)) == (calls(failing), fallbacks(failing))


class _StubAssistant:
    def __init__(self, generator: object | None) -> None:
        self.generator = generator


@pytest.mark.parametrize(("configured", "requested", "confidence", "mode", "expected"), [
    (True, None, Confidence.high, Mode.generative, (1, 0)),      # default mode with an LLM: a call
    (True, None, Confidence.low, Mode.extractive, (1, 1)),       # ...that fell back
    (True, None, Confidence.declined, Mode.extractive, (0, 0)),  # declined: never sent to the model
    (True, "extractive", Confidence.high, Mode.extractive, (0, 0)),
    (False, "generative", Confidence.high, Mode.extractive, (0, 0)),  # no LLM configured: no call
])
def test_observe_answer_reads_calls_and_fallbacks_off_the_answer(
    configured: bool, requested: str | None, confidence: Confidence, mode: Mode, expected: tuple[int, int]
) -> None:
    metrics = Metrics(lambda: None)
    answer = Answer(question="q", answer="a", abstained=confidence is Confidence.declined,
                    confidence=confidence, mode=mode)
    metrics.observe_answer(answer, _StubAssistant(object() if configured else None), requested)  # type: ignore[arg-type]
    counted = (metrics.registry.get_sample_value("policy_qa_llm_calls_total"),
               metrics.registry.get_sample_value("policy_qa_llm_fallbacks_total"))
    assert counted == expected
