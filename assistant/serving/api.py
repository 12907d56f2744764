"""The HTTP API over `Assistant`: /api/*, /healthz and the OpenAI-compatible /v1 (see openai_api).

`create_app()` builds the FastAPI app; the index is loaded once in its lifespan, never at import.
A missing or stale index does not crash the server: every endpoint that needs it answers 503 with
"run policy-qa build", and the next request after a rebuild picks the index up.

Limits (documented in the README): a question is at most `Settings.max_question_chars` characters
(500 by default), a history at most 20 turns of 4,000 characters each, a request body at most 64 KB.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field

from ..config import Settings, get_settings
from ..errors import PolicyQAError
from ..schema import Answer, Citation, DocumentInfo, SearchHit, Turn
from ..service import Assistant
from .access_log import RequestLogMiddleware
from .api_errors import (
    BodyLimitMiddleware,
    ErrorBody,
    MethodNotAllowedMiddleware,
    install_error_handlers,
    question_error,
)
from .deps import (
    MAX_HISTORY_TURNS,
    MAX_TURN_CHARS,
    AssistantHolder,
    check_question,
    get_app_settings,
    get_assistant,
    get_holder,
    passthrough_fields,
)
from .feedback import FeedbackEntry, FeedbackStore
from .openai_api import router as openai_router

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_SEARCH_K = 50

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "输入有误（空问题、过长、类型不对等）"},
    503: {"model": ErrorBody, "description": "索引不可用：请先运行 policy-qa build"},
}


# ---- request / response models -------------------------------------------------------------


class HistoryTurn(BaseModel):
    """An earlier turn of the conversation, so follow-ups ("那个体户呢？") keep their topic."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


class AskRequest(BaseModel):
    """A question. Fields named in FORWARDED_FIELDS (e.g. `mode`) go to `Assistant.ask` if it takes them."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"question": "简易注销怎么办理？"}]},
    )

    question: str = Field(description="用户的问题（中文），不超过 500 字")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    top_k: int | None = Field(None, ge=1, le=20, description="检索的条文数")
    mode: Literal["extractive", "generative"] | None = Field(
        None, description="回答模式：extractive（摘录条文原句）或 generative（大模型生成，逐句核对引用）；"
        "不填时，配置了大模型则为 generative，否则为 extractive",
    )


@dataclass
class AskCall:
    """A validated ask and the assistant to put it to (input is checked before the index is needed)."""

    assistant: Assistant
    question: str
    history: list[Turn]
    top_k: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        return {"question": self.question, "history": self.history or None, "top_k": self.top_k, **self.extra}


class HealthResponse(BaseModel):
    status: Literal["ok"]
    index: dict[str, Any] = Field(description="索引清单摘要：语料哈希、模型、数量、构建时间")


class ClauseDetail(BaseModel):
    clause: Citation
    document: DocumentInfo | None = None


class FeedbackRequest(BaseModel):
    rating: Literal["like", "dislike"]
    question: str = Field(min_length=1, max_length=MAX_TURN_CHARS)
    answer: str = Field("", max_length=20000)
    clause_ids: list[str] = Field(default_factory=list, max_length=50)
    reason: str | None = Field(None, max_length=1000)


# ---- dependencies ----------------------------------------------------------------------------


def parse_ask(
    body: AskRequest,
    settings: Annotated[Settings, Depends(get_app_settings)],
    holder: Annotated[AssistantHolder, Depends(get_holder)],
) -> AskCall:
    """Validate an ask before any response starts, so the stream endpoint can still answer 4xx/503."""
    question = check_question(body.question, settings)
    extra = passthrough_fields(body.model_extra or {}, Assistant.ask, strict=True)
    if body.mode is not None:
        extra["mode"] = body.mode
    history = [Turn(role=t.role, content=t.content) for t in body.history]
    return AskCall(holder.get(), question, history, body.top_k, extra)


# ---- routes ----------------------------------------------------------------------------------

router = APIRouter(prefix="/api", tags=["问答"], responses=ERROR_RESPONSES)


@router.post("/ask", response_model=Answer, summary="提问：返回带引用的答案")
def ask(call: Annotated[AskCall, Depends(parse_ask)], request: Request) -> Answer:
    answer = call.assistant.ask(**call.kwargs())
    log_answer(request, answer)
    return answer


@router.post(
    "/ask/stream",
    response_class=EventSourceResponse,
    summary="流式提问（SSE）：sources → token… → done；出错时发送 error 事件",
)
def ask_stream(call: Annotated[AskCall, Depends(parse_ask)]) -> Iterator[ServerSentEvent]:
    try:
        for event in call.assistant.stream(**call.kwargs()):
            yield ServerSentEvent(event=event.event, raw_data=json.dumps(event.data, ensure_ascii=False))
    except PolicyQAError as exc:
        yield _error_event(str(exc), type(exc).__name__)
    except Exception:  # an error event, never a dropped connection
        logger.exception("stream failed")
        yield _error_event("服务器内部错误，请稍后重试", "InternalError")


def log_answer(request: Request, answer: Answer) -> None:
    """Add the answer's outcome to the request's log line (access_log.py)."""
    log = getattr(request.state, "log", None)
    if isinstance(log, dict):
        log.update(confidence=answer.confidence.value, abstained=answer.abstained, mode=answer.mode.value)


def _error_event(message: str, kind: str) -> ServerSentEvent:
    return ServerSentEvent(event="error", raw_data=json.dumps({"message": message, "type": kind}, ensure_ascii=False))


@router.get("/search", response_model=list[SearchHit], summary="条文检索（坐席用）：只返回条文，不组织答案")
def search(
    holder: Annotated[AssistantHolder, Depends(get_holder)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    q: Annotated[str, Query(min_length=1, max_length=200, description="检索词，或“登记条例第三十三条”")],
    doc: Annotated[str | None, Query(description="只在该文件内检索（doc_id，见 /api/documents）")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K)] = 10,
) -> list[SearchHit]:
    query = check_question(q, settings, field="q", where="query")
    assistant = holder.get()
    if doc is not None and doc not in {d.doc_id for d in assistant.documents()}:
        raise question_error(f"未知文件 doc={doc!r}：可用的 doc_id 见 /api/documents", doc, "doc", "query")
    return assistant.search(query, doc_id=doc, k=k)


@router.get(
    "/clauses/{clause_id:path}",
    response_model=ClauseDetail,
    responses={404: {"model": ErrorBody, "description": "未知的条文编号"}},
    summary="按编号取条文（编号中的 # 需写成 %23）",
)
def clause(clause_id: str, assistant: Annotated[Assistant, Depends(get_assistant)]) -> ClauseDetail:
    citation = assistant.clause(clause_id)
    document = next((d for d in assistant.documents() if d.doc_id == citation.doc_id), None)
    return ClauseDetail(clause=citation, document=document)


@router.get("/documents", response_model=list[DocumentInfo], summary="收录的文件")
def documents(assistant: Annotated[Assistant, Depends(get_assistant)]) -> list[DocumentInfo]:
    return assistant.documents()


@router.post("/feedback", response_model=FeedbackEntry, status_code=status.HTTP_201_CREATED, summary="对答案点赞/点踩")
def feedback(body: FeedbackRequest, request: Request) -> FeedbackEntry:
    store: FeedbackStore = request.app.state.feedback
    question = check_question(body.question, request.app.state.settings)
    return store.add(body.rating, question, body.answer, body.clause_ids, body.reason, source="api")


health_router = APIRouter(tags=["运维"], responses={503: ERROR_RESPONSES[503]})


@health_router.get("/healthz", response_model=HealthResponse, summary="健康检查与索引摘要")
def healthz(assistant: Annotated[Assistant, Depends(get_assistant)]) -> HealthResponse:
    return HealthResponse(status="ok", index=assistant.manifest.model_dump(mode="json"))


# ---- the app ---------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, holder: AssistantHolder | None = None) -> FastAPI:
    """The API app. Pass a `holder` to share the loaded assistant with a UI mounted on the same app."""
    settings = settings or get_settings()
    holder = holder or AssistantHolder(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        assistant = holder.load()
        if assistant is not None:
            m = assistant.manifest
            logger.info("索引已加载：%s 个文件，%s 条条文（构建于 %s）", m.documents, m.clauses, m.built_at)
        else:
            logger.warning("索引不可用：%s。服务照常启动；运行 policy-qa build 后会自动生效。", holder.error)
        yield

    app = FastAPI(
        title="厦门营商环境政策问答 API",
        description="基于《厦门市营商环境行动方案》及相关法规的带引用问答。答案中的 [n] 对应 citations 中的条文。",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.feedback = FeedbackStore(settings.feedback_path)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES, prefixes=("/api/", "/v1/"))
    install_error_handlers(app, max_body_bytes=MAX_BODY_BYTES)
    app.add_middleware(MethodNotAllowedMiddleware, routes=lambda: app.routes, prefixes=("/api/", "/v1/", "/healthz"))
    app.add_middleware(RequestLogMiddleware)  # outermost: it times and logs whatever happens inside
    app.include_router(router)
    app.include_router(health_router)

    app.include_router(openai_router)
    return app
