"""The HTTP API over `Assistant`: /api/*, /healthz and the OpenAI-compatible /v1 (see openai_api).

`create_app()` builds the FastAPI app; the index is loaded once in its lifespan, never at import.
A missing or stale index does not crash the server: every endpoint that needs it answers 503 with
"run policy-qa build", and the next request after a rebuild picks the index up.

Limits (documented in the README): a question is at most `Settings.max_question_chars` characters
(500 by default), a history at most 20 turns of 4,000 characters each, a request body at most 64 KB,
a feedback request and record at most `Settings.feedback_max_bytes` (16 KB), a policy-file upload under
/api/documents at most `Settings.max_upload_mb`. API keys, rate limits and
metrics are middleware (security.py, ratelimit.py, metrics.py) around the routes here; the order they
wrap each other in is set in `create_app`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Security, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..config import Settings, get_settings
from ..errors import IndexError_, PolicyQAError
from ..knowledge.labels import LabelStore, RelevanceLabel
from ..question import clean_text
from ..schema import Answer, Ask, Citation, DocumentInfo, SearchHit, Turn
from ..service import Assistant
from .access_log import RequestLogMiddleware
from .api_errors import (
    BUILD_HINT,
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
    answer_observer,
    check_question,
    get_app_settings,
    get_assistant,
    get_holder,
    iso_date_text,
)
from .documents_api import router as documents_router
from .feedback import (
    FeedbackEntry,
    FeedbackStorageError,
    FeedbackStore,
    FeedbackTooLargeError,
    StorageHealth,
)
from .metrics import Metrics, MetricsMiddleware
from .openai_api import router as openai_router
from .ratelimit import RateLimiter, RateLimitMiddleware, client_identity, parse_limit
from .security import ApiKeyMiddleware, ApiKeys, bearer_scheme

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
UPLOAD_PREFIX = "/api/documents"  # POST/DELETE here are knowledge-base changes (documents_api.py)
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and part headers around an uploaded file
MAX_SEARCH_K = 50

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "配置了 API 密钥（POLICY_QA_API_KEYS）而请求未带有效的 Bearer 密钥"},
    413: {"model": ErrorBody, "description": "请求体过大"},
    422: {"model": ErrorBody, "description": "输入有误（空问题、过长、类型不对、请求体不是合法 JSON 等）"},
    429: {"model": ErrorBody, "description": "请求过于频繁；Retry-After 头给出需等待的秒数",
          "headers": {"Retry-After": {"description": "需等待的秒数", "schema": {"type": "integer"}}}},
    503: {"model": ErrorBody, "description": "索引不可用：请先运行 policy-qa build"},
}

STREAM_EVENTS_DOC = """SSE 事件依次为：
- `sources`：`{"citations": [...]}`，检索到的条文（拒答时没有此事件）
- `token`：`{"text": "..."}`，答案的一段，可有多个
- `done`：完整的答案对象（与 /api/ask 的返回相同），以它为准
- `error`：`{"message": "中文说明", "type": "错误类别"}`，流开始后出错时发送，之后流结束（没有 done）

流开始前发现的问题（输入有误、索引不可用、密钥、限流）照常以 JSON 错误响应返回（422/503/401/429）。"""


def json_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The error responses with their JSON media type spelled out: on a route whose response class is
    SSE, FastAPI would otherwise document each error body as text/event-stream."""
    out: dict[int | str, dict[str, Any]] = {}
    for code, spec in responses.items():
        spec = dict(spec)
        model = spec.pop("model", None)
        if model is not None:  # the schema itself is registered by the other routes that use it
            spec["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
        out[code] = spec
    return out


STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **json_errors(ERROR_RESPONSES),
    200: {
        "description": STREAM_EVENTS_DOC,
        "content": {"text/event-stream": {
            "example": 'event: sources\ndata: {"citations": [...]}\n\nevent: token\ndata: {"text": "……[1]"}\n\n'
                       'event: done\ndata: {"question": "...", "answer": "……[1]", ...}\n\n',
        }},
    },
}


# ---- request / response models -------------------------------------------------------------

# What `check_question` accepts, stated in the schema for clients and contract tests: some visible
# character, and not over-long. Documented, not enforced by pydantic, so a refusal keeps the specific
# Chinese message of check_question ("问题为空…", "问题过长（501字）…"). The pattern's class is what
# question.clean_text removes plus whitespace. maxLength is the default limit (a deployment may change it).
VISIBLE_TEXT = "[^\\s\\x00-\\x1f\\x7f-\\x9f\\ufeff]"
QUESTION_SCHEMA: dict[str, Any] = {
    "minLength": 1, "maxLength": Settings.model_fields["max_question_chars"].default, "pattern": VISIBLE_TEXT,
}


class HistoryTurn(BaseModel):
    """An earlier turn of the conversation, so follow-ups ("那个体户呢？") keep their topic."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


class AskRequest(BaseModel):
    """A question and how to answer it; any other field is refused (422)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": "简易注销怎么办理？"}]})

    question: str = Field(description="用户的问题（中文），不超过 500 字（POLICY_QA_MAX_QUESTION_CHARS）",
                          json_schema_extra=QUESTION_SCHEMA)
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    top_k: int | None = Field(None, ge=1, le=20, description="检索的条文数")
    mode: Literal["extractive", "generative"] | None = Field(
        None, description="回答模式：extractive（摘录条文原句）或 generative（大模型生成，逐句核对引用）；"
        "不填时，配置了大模型则为 generative，否则为 extractive",
    )
    as_of: Annotated[date | None, BeforeValidator(iso_date_text)] = Field(
        None, description="按该日（YYYY-MM-DD）有效的文件版本作答；不填时按现行版本")


@dataclass
class AskCall:
    """A validated ask and the assistant to put it to (input is checked before the index is needed)."""

    assistant: Assistant
    ask: Ask
    on_answer: Callable[[Answer], None] | None = None  # the log line and metrics (deps.answer_observer)

    def observe(self, answer: Answer) -> None:
        if self.on_answer is not None:
            self.on_answer(answer)


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="ok：可以回答；degraded：可以回答，但有部分功能不可用（如反馈无法保存）")
    index: dict[str, Any] = Field(description="索引清单摘要：语料哈希、模型、数量、构建时间")
    storage: dict[str, StorageHealth] = Field(default_factory=dict, description="存储是否可写（feedback：反馈数据库）")


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
    request: Request,
    settings: Annotated[Settings, Depends(get_app_settings)],
    holder: Annotated[AssistantHolder, Depends(get_holder)],
) -> AskCall:
    """Validate an ask before any response starts, so the stream endpoint can still answer 4xx/503."""
    ask = Ask(question=check_question(body.question, settings), top_k=body.top_k, mode=body.mode, as_of=body.as_of,
              history=tuple(Turn(role=t.role, content=t.content) for t in body.history))
    assistant = holder.get()
    return AskCall(assistant, ask, answer_observer(request, assistant, body.mode))


# ---- routes ----------------------------------------------------------------------------------

router = APIRouter(prefix="/api", tags=["问答"], responses=ERROR_RESPONSES)


@router.post("/ask", response_model=Answer, summary="提问：返回带引用的答案")
def ask(call: Annotated[AskCall, Depends(parse_ask)]) -> Answer:
    answer = call.assistant.ask(call.ask)
    call.observe(answer)
    return answer


@router.post(
    "/ask/stream",
    response_class=EventSourceResponse,
    responses=STREAM_RESPONSES,
    summary="流式提问（SSE）：sources → token… → done；出错时发送 error 事件",
    description=STREAM_EVENTS_DOC,
)
def ask_stream(call: Annotated[AskCall, Depends(parse_ask)]) -> Iterator[ServerSentEvent]:
    try:
        for event in call.assistant.stream(call.ask):
            if event.event == "done":
                call.observe(Answer.model_validate(event.data))
            yield ServerSentEvent(event=event.event, raw_data=json.dumps(event.data, ensure_ascii=False))
    except PolicyQAError as exc:
        yield _error_event(str(exc), type(exc).__name__)
    except Exception:  # an error event, never a dropped connection
        logger.exception("stream failed")
        yield _error_event("服务器内部错误，请稍后重试", "InternalError")


def _error_event(message: str, kind: str) -> ServerSentEvent:
    return ServerSentEvent(event="error", raw_data=json.dumps({"message": message, "type": kind}, ensure_ascii=False))


@router.get("/search", response_model=list[SearchHit], summary="条文检索（坐席用）：只返回条文，不组织答案")
def search(
    holder: Annotated[AssistantHolder, Depends(get_holder)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    q: Annotated[str, Query(min_length=1, max_length=200, description="检索词，或“登记条例第三十三条”",
                            json_schema_extra={"pattern": VISIBLE_TEXT})],
    doc: Annotated[str | None, Query(description="只在该文件内检索（doc_id，见 /api/documents）；空值表示不限")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K)] = 10,
    as_of: Annotated[date | None, Query(description="只检索该日（YYYY-MM-DD）有效的文件版本")] = None,
) -> list[SearchHit]:
    query = check_question(q, settings, field="q", where="query")
    assistant = holder.get()
    doc = doc or None  # `doc=` from a form with nothing chosen means no filter
    if doc is not None and doc not in {d.doc_id for d in assistant.documents()}:
        raise question_error(f"未知文件 doc={doc!r}：可用的 doc_id 见 /api/documents", doc, "doc", "query")
    return assistant.search(query, doc_id=doc, k=k, as_of=as_of)


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


@router.post(
    "/feedback", response_model=FeedbackEntry, status_code=status.HTTP_201_CREATED, summary="对答案点赞/点踩",
    description="配置了 API 密钥时总需要密钥；每个客户端有频率限制（默认 20 次/分钟）；请求体与每条记录不超过 16 KB。",
    responses={503: {"model": ErrorBody, "description": "反馈存储不可写（目录、只读磁盘、磁盘已满等）"}},
)
def feedback(body: FeedbackRequest, request: Request) -> FeedbackEntry:
    store: FeedbackStore = request.app.state.feedback
    question = check_question(body.question, request.app.state.settings)
    try:
        return store.add(body.rating, question, body.answer, body.clause_ids, body.reason, source="api")
    except FeedbackTooLargeError as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(exc)) from None
    except FeedbackStorageError as exc:
        logger.error("feedback could not be stored at %s: %s", store.path, exc.strerror)  # the path: log only
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail=f"反馈暂时无法保存：{exc.strerror}。请联系管理员检查 POLICY_QA_DB_PATH") from None


class LabelRequest(BaseModel):
    """An operator's judgement: `clause_id` answers `question`, or (`verdict: none`) no clause does."""

    question: str = Field(min_length=1, max_length=MAX_TURN_CHARS)
    verdict: Literal["answers", "none"]
    clause_id: str | None = Field(None, max_length=300)


@router.post(
    "/labels", response_model=RelevanceLabel, status_code=status.HTTP_201_CREATED,
    summary="坐席标注：哪一条条文答复了这个问题（或都不相关）",
    description="标注存入数据库，下次 `policy-qa train fit` 与 `policy-qa build` 会用到。写操作：配置了 API 密钥时需要密钥，"
                "有频率限制。`verdict` 为 `answers` 时必须给出存在的 `clause_id`；为 `none` 时不给。",
    responses={404: {"model": ErrorBody, "description": "条文编号不存在"}},
)
def label(body: LabelRequest, request: Request, assistant: Annotated[Assistant, Depends(get_assistant)],
          x_operator: Annotated[str | None, Header(max_length=40, description="标注人（可不填）")] = None,
          ) -> RelevanceLabel:
    question = check_question(body.question, request.app.state.settings)
    if (body.verdict == "answers") != (body.clause_id is not None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail="请求有误：verdict 为 answers 时须给出 clause_id，为 none 时不要给")
    if body.clause_id is not None and body.clause_id not in assistant.index.by_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"没有编号为 {body.clause_id} 的条文")
    operator = clean_text(unquote(x_operator or "")).strip() or "api"
    return LabelStore(request.app.state.settings.db_path).add(
        RelevanceLabel(operator=operator, question=question, verdict=body.verdict, clause_id=body.clause_id))


class HealthUnavailable(ErrorBody):
    """/healthz without a usable index: the reason, and the storage state all the same."""

    storage: dict[str, StorageHealth] = Field(default_factory=dict)


health_router = APIRouter(tags=["运维"])


@health_router.get(
    "/healthz", response_model=HealthResponse, summary="健康检查：索引摘要与存储状态（无需密钥）",
    description="索引可用时为 200：status 为 ok，反馈存储不可写时为 degraded（问答照常）；"
                "索引不可用时为 503，detail 说明原因，storage 照常报告。",
    responses={503: {"model": HealthUnavailable, "description": "索引不可用：请先运行 policy-qa build"}},
)
def healthz(request: Request, holder: Annotated[AssistantHolder, Depends(get_holder)]) -> Any:
    store: FeedbackStore = request.app.state.feedback
    storage = {"feedback": store.health()}
    try:
        assistant = holder.get()
    except IndexError_ as exc:
        body = HealthUnavailable(detail=f"索引不可用：{exc}。{BUILD_HINT}", storage=storage)
        return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
    return HealthResponse(status="ok" if storage["feedback"].writable else "degraded",
                          index=assistant.manifest.model_dump(mode="json"), storage=storage)


metrics_router = APIRouter(tags=["运维"])


@metrics_router.get(
    "/metrics", response_class=PlainTextResponse, summary="Prometheus 指标（无需密钥）",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus 文本格式"}},
)
def metrics(request: Request) -> Response:
    return request.app.state.metrics.response()


# ---- the app ---------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, holder: AssistantHolder | None = None) -> FastAPI:
    """The API app. Pass a `holder` to share the loaded assistant with a UI mounted on the same app."""
    settings = settings or get_settings()
    holder = holder or AssistantHolder(settings)
    keys = ApiKeys(settings.api_keys, settings.admin_token)
    limiter = RateLimiter(parse_limit(settings.rate_limit_writes, "POLICY_QA_RATE_LIMIT_WRITES"),
                          parse_limit(settings.rate_limit_reads, "POLICY_QA_RATE_LIMIT_READS"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        assistant = holder.load()
        if assistant is not None:
            m = assistant.manifest
            logger.info("索引已加载：%s 个文件，%s 条条文（构建于 %s）", m.documents, m.clauses, m.built_at)
        else:
            logger.warning("索引不可用：%s。服务照常启动；运行 policy-qa build 后会自动生效。", holder.error)
        if keys:
            logger.info("API 密钥已启用：/api 与 /v1 需要 Authorization: Bearer <密钥>%s",
                        "" if settings.api_keys_for_reads else "（仅写操作）")
        yield

    # FastAPIOffline serves Swagger UI's and ReDoc's JS/CSS from the installed package instead of a
    # CDN, so /docs works on a machine without internet access.
    app = FastAPIOffline(
        title="厦门营商环境政策问答 API",
        description="基于《厦门市营商环境行动方案》及相关法规的带引用问答。答案中的 [n] 对应 citations 中的条文。",
        version="0.1.0",
        lifespan=lifespan,
        static_url="/docs-assets",
    )
    app.state.settings = settings
    app.state.holder = holder
    # Feedback lives in the SQLite database; the old JSONL (feedback_path) is imported once, on first use.
    app.state.feedback = FeedbackStore(settings.db_path, settings.feedback_max_bytes,
                                       legacy_path=settings.feedback_path)
    app.state.metrics = metrics_ = Metrics(lambda: holder.current)

    # Middleware, innermost first (each add_middleware wraps everything added before it):
    # body limits → error handlers → 404/405 → rate limit → API key → CORS → metrics → request log.
    # Policy-file uploads (/api/documents, knowledge-base routes) have their own, larger limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES, prefixes=("/api/", "/v1/"),
                       exclude=(UPLOAD_PREFIX,))
    upload_mb = settings.max_upload_mb
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(upload_mb * 1024 * 1024) + MULTIPART_OVERHEAD,
                       prefixes=(UPLOAD_PREFIX,), detail=f"文件过大：上限为 {upload_mb:g} MB（POLICY_QA_MAX_UPLOAD_MB）")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.feedback_max_bytes, prefixes=("/api/feedback",),
                       detail=f"请求体过大：反馈上限 {settings.feedback_max_bytes // 1024} KB")
    install_error_handlers(app, max_body_bytes=MAX_BODY_BYTES)
    app.add_middleware(MethodNotAllowedMiddleware, routes=lambda: app.routes, prefixes=("/api/", "/v1/", "/healthz", "/metrics"))
    app.add_middleware(RateLimitMiddleware, limiter=limiter, identify=lambda scope: client_identity(scope, keys),
                       on_limited=lambda kind: metrics_.rate_limited.labels(kind).inc())
    app.add_middleware(ApiKeyMiddleware, keys=keys, for_reads=settings.api_keys_for_reads)
    if settings.cors_origins:  # outside the key check: a preflight carries no key, and a 401 needs CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics_, routes=lambda: app.routes)
    app.add_middleware(RequestLogMiddleware)  # outermost: it times and logs whatever happens inside

    # With keys configured the schema declares Bearer auth, so /docs offers its "Authorize" button.
    secured = [Security(bearer_scheme)] if keys else []
    app.include_router(router, dependencies=secured)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(openai_router, dependencies=secured)
    app.include_router(documents_router, dependencies=secured)
    return app
