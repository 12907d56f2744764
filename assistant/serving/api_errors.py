"""HTTP error bodies for the API (Chinese messages that say what is wrong) and the body-size limit.

/api and /healthz answer `{"detail": "<message>", "errors": [...]}`; /v1 answers the OpenAI shape
`{"error": {"message", "type", "param", "code"}}` so OpenAI clients show the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    ExtraMissingError,
    IndexError_,
    NotFoundError,
    PolicyQAError,
    QuestionError,
)

logger = logging.getLogger(__name__)

BUILD_HINT = "请先运行 policy-qa build 构建索引（run policy-qa build）"


class FieldError(BaseModel):
    loc: list[str | int]
    type: str
    msg: str


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer under /api and /healthz."""

    detail: str
    errors: list[FieldError] = []


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class OpenAIErrorBody(BaseModel):
    """The body of every 4xx/5xx answer under /v1, and of an error chunk in its streams."""

    error: OpenAIErrorDetail


_PLAIN = {
    "missing": "缺少必填字段",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为布尔值（true 或 false）",
    "bool_parsing": "应为布尔值（true 或 false）",
    "list_type": "应为数组",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "json_invalid": "不是合法的 JSON",
    "extra_forbidden": "不支持的字段",
    "string_pattern_mismatch": "格式不正确",
    "enum": "取值不在允许范围内",
}


def describe_error(err: dict[str, Any]) -> str:
    """One pydantic/FastAPI validation error as a Chinese phrase, e.g. '应不大于 20'."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length", 1) <= 1 else f"至少 {ctx['min_length']} 个字符"
    if kind == "string_too_long":
        return f"过长：最多 {ctx.get('max_length')} 个字符"
    if kind == "too_short":
        return f"至少需要 {ctx.get('min_length')} 项"
    if kind == "too_long":
        return f"条目过多：最多 {ctx.get('max_length')} 项"
    if kind in ("greater_than_equal", "greater_than"):
        return f"应不小于 {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"应不大于 {ctx.get('le', ctx.get('lt'))}"
    if kind == "literal_error":
        return f"应为以下之一：{ctx.get('expected')}"
    if kind == "value_error" and ctx.get("error"):
        return str(ctx["error"])
    return str(err.get("msg", "取值无效"))


def _where(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    if not parts:
        return "请求体" if loc and loc[0] == "body" else "请求"
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_message(errors: Sequence[dict[str, Any]]) -> tuple[str, list[FieldError]]:
    """The summary line and the per-field list for a RequestValidationError."""
    fields: list[FieldError] = []
    for err in errors:
        loc = list(err.get("loc") or [])
        if err.get("type") == "json_invalid":
            loc = ["body"]
        fields.append(FieldError(loc=[p if isinstance(p, int) else str(p) for p in loc],
                                 type=str(err.get("type", "")), msg=describe_error(err)))
    summary = "；".join(f"{_where(f.loc)}：{f.msg}" for f in fields) or "请求格式不正确"
    return f"请求有误：{summary}", fields


def question_error(
    message: str, value: Any = None, field: str = "question", where: str = "body"
) -> RequestValidationError:
    """A 422 for input our own checks reject (blank, too long, unknown), in the validation shape."""
    return RequestValidationError(
        [{"type": "invalid_input", "loc": (where, field), "msg": message, "input": value}]
    )


def is_openai_path(path: str) -> bool:
    """Whether a path belongs to the OpenAI-compatible surface, whose errors take OpenAI's shape."""
    return path.startswith("/v1/") or path == "/v1"


def _openai_type(status: int) -> str:
    """OpenAI's error `type` for a status, so OpenAI clients raise the matching exception class."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "server_error"


def openai_error(message: str, status: int, code: str | int | None = None, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error body: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": _openai_type(status), "param": param,
                      "code": status if code is None else code}}


def error_response(
    request: Request, status: int, message: str, fields: list[FieldError] | None = None,
    *, code: str | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Shape an error for the surface the request came in on (`code` names the error for /v1 clients)."""
    if is_openai_path(request.url.path):
        param = ".".join(str(p) for p in fields[0].loc if p != "body") if fields else ""
        body: dict[str, Any] = openai_error(message, status, code, param or None)
    else:
        body = ErrorBody(detail=message, errors=fields or []).model_dump()
    return JSONResponse(status_code=status, content=jsonable_encoder(body), headers=headers)


_HTTP_MESSAGES = {
    401: "缺少或无效的 API 密钥",
    404: "未找到该资源",
    405: "不支持该请求方法",
    413: "请求体过大",
    415: "请求体应为 JSON（Content-Type: application/json）",
}


_FASTAPI_PARSE_ERROR = "There was an error parsing the body"


def install_error_handlers(app: FastAPI, *, max_body_bytes: int) -> None:
    """Register the handlers that turn every failure into a clear Chinese message."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, fields = validation_message(exc.errors())
        return error_response(request, 422, message, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        status = exc.status_code
        if status == 400 and detail == _FASTAPI_PARSE_ERROR:
            # FastAPI's English 400 for a body it cannot even decode (e.g. JSON in GBK): the README
            # promises a Chinese 422 for every unparseable body, like the one for malformed JSON.
            status, detail = 422, "请求有误：请求体：不是合法的 JSON（应为 UTF-8 编码的 JSON 对象）"
            fields = [FieldError(loc=["body"], type="json_invalid", msg="不是合法的 JSON")]
            return error_response(request, status, detail, fields)
        if status == 413 and detail in (None, "Content Too Large", "Request Entity Too Large"):
            detail = f"请求体过大：上限 {max_body_bytes // 1024} KB"
        elif detail is None or detail in ("Not Found", "Method Not Allowed", "Content Too Large"):
            detail = _HTTP_MESSAGES.get(status, detail or "请求失败")
        response = error_response(request, status, detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(PolicyQAError)
    async def _domain(request: Request, exc: PolicyQAError) -> JSONResponse:
        if isinstance(exc, IndexError_):
            return error_response(request, 503, f"索引不可用：{exc}。{BUILD_HINT}")
        if isinstance(exc, QuestionError):
            return error_response(request, 422, f"问题无法处理：{exc}")
        if isinstance(exc, NotFoundError):
            return error_response(request, 404, str(exc))
        if isinstance(exc, ExtraMissingError):
            return error_response(request, 501, str(exc))
        logger.exception("unexpected PolicyQAError", exc_info=exc)
        return error_response(request, 500, f"处理失败：{exc}")

    # Unexpected exceptions are answered by InternalErrorMiddleware (see there why not a handler here).
    app.add_middleware(InternalErrorMiddleware)


class MethodNotAllowedMiddleware:
    """A 405 with the Allow header for a known API path asked with the wrong method, a 404 for an
    unknown one.

    Starlette would answer 405 itself, but the web UI is mounted at "/" and takes every request no
    API route fully matches, so a GET on /api/ask reached Gradio and came back as an English 404.
    """

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[Any]], prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.routes = routes
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and scope["method"] != "OPTIONS"  # CORS preflights are CORSMiddleware's
                and path.startswith(self.prefixes) and not self._matches(scope, scope["method"])):
            allowed = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if self._matches(scope, m)]
            if allowed:
                allow = ", ".join(allowed)
                response = error_response(Request(scope), 405, f"不支持该请求方法：{path} 只接受 {allow}")
                response.headers["Allow"] = allow
            else:  # no API route has this path: say so here, not in the UI's English 404
                response = error_response(Request(scope), 404, f"未找到该接口：{path}（接口列表见 /docs）")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _matches(self, scope: Scope, method: str) -> bool:
        """Whether an API route (not the UI mount) fully matches the path with this method."""
        probe = {**scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in self.routes() if not isinstance(route, Mount))


class InternalErrorMiddleware:
    """Answer an unexpected exception with a JSON 500 and keep the connection usable.

    Starlette's own catch-all (`exception_handler(Exception)`) sends the 500 and then re-raises, and
    uvicorn answers a re-raised exception by dropping the keep-alive connection without saying
    `Connection: close`, so a client's next request on it got an empty reply. Here the exception is
    logged with its traceback (log only, never the response) and stops.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error on %s", scope.get("path"))
            if started:  # too late for a status code; end the body so the client is not left waiting
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            response = error_response(Request(scope), 500, "服务器内部错误，请稍后重试")
            await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` under the given path prefixes with a JSON 413.

    The check sits in `receive`, so it covers both a declared Content-Length and chunked bodies;
    the HTTPException it raises reaches the app's handler above and gets the Chinese message.
    Other paths (the mounted Gradio app, and `exclude`d ones with a limit of their own) keep their own limits.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, prefixes: tuple[str, ...], detail: str | None = None,
                 exclude: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefixes = prefixes
        self.detail = detail  # None: the handler's message for the app-wide limit
        self.exclude = exclude

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefixes) or (self.exclude and path.startswith(self.exclude)):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                raise HTTPException(status_code=413, detail=self.detail)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=self.detail)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
