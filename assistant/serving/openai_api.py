"""OpenAI-compatible /v1/chat/completions (streaming and not) and /v1/models over `Assistant`.

The last user message is the question, earlier user/assistant messages are the history. The answer
text keeps its [n] markers; the structured citations travel in the extra top-level field
`citations` (and `abstained`), which the official `openai` client exposes via `model_extra`.
Sampling parameters (temperature, max_tokens, ...) are accepted and ignored.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..config import Settings
from ..errors import PolicyQAError
from ..schema import Answer, Ask, Citation, Turn
from ..service import Assistant
from .api_errors import OpenAIErrorBody, openai_error, question_error
from .deps import (
    MAX_HISTORY_TURNS,
    MAX_TURN_CHARS,
    AssistantHolder,
    answer_observer,
    check_question,
    get_app_settings,
    get_holder,
    iso_date_text,
)

MODEL_ID = "policy-qa"
logger = logging.getLogger(__name__)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"model": MODEL_ID, "messages": [{"role": "user", "content": "简易注销怎么办理？"}]}]},
    )

    model: str = MODEL_ID
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=2 * MAX_HISTORY_TURNS + 2)
    stream: bool = Field(False, strict=True)  # JSON true/false only: 0 or "yes" is refused, as the schema says
    top_k: int | None = Field(None, ge=1, le=20, description="扩展参数：检索的条文数")
    mode: Literal["extractive", "generative"] | None = Field(
        None, description="扩展参数：回答模式，extractive（摘录条文原句）或 generative（大模型生成）")
    as_of: Annotated[date | None, BeforeValidator(iso_date_text)] = Field(
        None, description="扩展参数：按该日（YYYY-MM-DD）有效的文件版本作答；不填时按现行版本")


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[Citation] = Field(description="扩展字段：答案中 [n] 对应的条文")
    abstained: bool = Field(description="扩展字段：语料无法回答时为 true")


@dataclass
class ChatCall:
    assistant: Assistant
    ask: Ask
    model: str
    stream: bool
    on_answer: Callable[[Answer], None] | None = None  # the log line and metrics (deps.answer_observer)

    @property
    def question(self) -> str:
        return self.ask.question

    def observe(self, answer: Answer) -> None:
        if self.on_answer is not None:
            self.on_answer(answer)


def parse_chat(
    body: ChatCompletionRequest,
    request: Request,
    settings: Annotated[Settings, Depends(get_app_settings)],
    holder: Annotated[AssistantHolder, Depends(get_holder)],
) -> ChatCall:
    """The last user message is the question; earlier user/assistant turns are the history."""
    last = body.messages[-1]
    if last.role != "user":
        raise question_error("最后一条消息应来自 user（即要回答的问题）", last.role, "messages")
    question = check_question(last.text(), settings, field="messages")
    history = [
        Turn(role=m.role, content=m.text()[:MAX_TURN_CHARS])
        for m in body.messages[:-1]
        if m.role in ("user", "assistant") and m.text().strip()
    ][-MAX_HISTORY_TURNS:]
    # OpenAI clients send many sampling fields (temperature, …): they are ignored, the extension fields read.
    ask = Ask(question=question, history=tuple(history), top_k=body.top_k, mode=body.mode, as_of=body.as_of)
    assistant = holder.get()
    return ChatCall(assistant, ask, body.model, body.stream, answer_observer(request, assistant, body.mode))


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": OpenAIErrorBody, "description": "配置了 API 密钥而请求未带有效的 Bearer 密钥（code: invalid_api_key）"},
    413: {"model": OpenAIErrorBody, "description": "请求体过大"},
    422: {"model": OpenAIErrorBody, "description": "输入有误；message 为中文说明，param 为出错的字段"},
    429: {"model": OpenAIErrorBody, "description": "请求过于频繁（code: rate_limit_exceeded）；见 Retry-After 头",
          "headers": {"Retry-After": {"description": "需等待的秒数", "schema": {"type": "integer"}}}},
    503: {"model": OpenAIErrorBody, "description": "索引不可用：请先运行 policy-qa build"},
}

STREAM_DOC = """stream=true 时返回 SSE（text/event-stream），与 OpenAI 相同：每个 `data:` 行是一个
chat.completion.chunk（首块带 role 与扩展字段 citations，末块带 finish_reason=stop、citations、abstained、usage），
最后是 `data: [DONE]`。流开始后出错时发送一行 `data: {"error": {"message", "type", "param", "code"}}`，
之后流结束，没有 [DONE]。流开始前的错误（输入有误、索引不可用、密钥、限流）照常以 JSON 错误响应返回。"""

router = APIRouter(prefix="/v1", tags=["OpenAI 兼容"], responses=ERROR_RESPONSES)


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _usage(question: str, answer: str) -> Usage:
    # Characters stand in for tokens: there is no tokenizer in the extractive mode.
    return Usage(prompt_tokens=len(question), completion_tokens=len(answer), total_tokens=len(question) + len(answer))


@router.get("/models", summary="可用模型列表")
def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "policy-qa"}]}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="OpenAI 兼容的对话接口（stream=true 时为 SSE）",
    description=STREAM_DOC,
    responses={200: {"description": "stream=false：chat.completion 对象；stream=true：SSE 流（见上）",
                     "content": {"text/event-stream": {"itemSchema": {
                         "type": "object", "properties": {"data": {"type": "string"}}, "required": ["data"]}}}}},
)
def chat_completions(call: Annotated[ChatCall, Depends(parse_chat)]) -> Any:
    if call.stream:
        return EventSourceResponse(_stream_chunks(call))
    answer = call.assistant.ask(call.ask)
    call.observe(answer)
    return ChatCompletion(
        id=_completion_id(),
        created=int(time.time()),
        model=call.model,
        choices=[Choice(message=ResponseMessage(content=answer.answer))],
        usage=_usage(call.question, answer.answer),
        citations=answer.citations,
        abstained=answer.abstained,
    )


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
           **extra: Any) -> bytes:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return _sse(body)


def _sse(body: Any) -> bytes:
    data = body if isinstance(body, str) else json.dumps(jsonable_encoder(body), ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def _stream_chunks(call: ChatCall) -> Iterator[bytes]:
    """OpenAI chunk stream: role (+citations) first, then content pieces, then finish, then [DONE]."""
    cid, created = _completion_id(), int(time.time())
    sent_role = False
    try:
        for event in call.assistant.stream(call.ask):
            if event.event == "sources":
                yield _chunk(cid, created, call.model, {"role": "assistant", "content": ""},
                             citations=event.data.get("citations", []))
                sent_role = True
            elif event.event == "token":
                if not sent_role:
                    yield _chunk(cid, created, call.model, {"role": "assistant", "content": ""})
                    sent_role = True
                yield _chunk(cid, created, call.model, {"content": event.data.get("text", "")})
            elif event.event == "done":
                answer = Answer.model_validate(event.data)
                call.observe(answer)
                yield _chunk(cid, created, call.model, {}, "stop",
                             citations=[c.model_dump(mode="json") for c in answer.citations],
                             abstained=answer.abstained,
                             usage=_usage(call.question, answer.answer).model_dump())
            elif event.event == "error":
                yield _sse(openai_error(event.data.get("message", "处理失败"), 500, "stream_error"))
                return
    except PolicyQAError as exc:
        yield _sse(openai_error(str(exc), 500, "stream_error"))
        return
    except Exception:  # an error chunk, never a dropped connection
        logger.exception("chat completion stream failed")
        yield _sse(openai_error("服务器内部错误，请稍后重试", 500, "internal_error"))
        return
    yield _sse("[DONE]")
