"""Optional API keys (`POLICY_QA_API_KEYS`): `Authorization: Bearer <key>` on /api and /v1, the way
vLLM's `--api-key` works. Without keys the API is open, as before.

The check is ASGI middleware, not a route dependency, so it runs before the body is read and covers
routes added later (the knowledge-base writes) without each one having to remember it. /healthz,
/metrics, /docs and the chat page stay open: probes and scrapers carry no key, and the page's own
requests go through Gradio, not /api.

The operator token (`POLICY_QA_ADMIN_TOKEN`, header `X-Admin-Token`, checked again by the
knowledge-base routes themselves) also passes: "a key or the admin token", so the page's 知识库管理
tab, which sends only the token, keeps working once API keys are configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from .api_errors import error_response

PROTECTED_PREFIXES = ("/api/", "/v1/")
# POSTs that only read (a question is a query); every other non-GET method under /api is a write,
# so a new write route is protected by default.
READ_POSTS = frozenset({"/api/ask", "/api/ask/stream", "/v1/chat/completions"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

MESSAGE_MISSING = "需要 API 密钥：请在请求头中加入 Authorization: Bearer <密钥>"
MESSAGE_INVALID = "API 密钥无效：请检查 Authorization: Bearer <密钥>"

# Declared on the routers only when keys are configured, so /docs shows the "Authorize" button.
bearer_scheme = HTTPBearer(auto_error=False, description="POLICY_QA_API_KEYS 中的任一密钥")


def is_protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIXES) or path in ("/api", "/v1")


def is_write(method: str, path: str) -> bool:
    """Whether a request changes stored state (feedback now, knowledge-base changes later)."""
    return method not in READ_METHODS and path not in READ_POSTS


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ApiKeys:
    """The configured keys (and the operator token, also accepted); `valid` compares in constant time
    so response timing does not leak them."""

    def __init__(self, keys: Sequence[str], admin_token: str | None = None) -> None:
        self._keys = [k.encode() for k in keys if k]
        self._admin = admin_token.encode() if admin_token else None

    def __bool__(self) -> bool:
        return bool(self._keys)

    def valid(self, token: str | None) -> bool:
        if token is None:
            return False
        given = token.encode("utf-8", "replace")
        return any([hmac.compare_digest(given, key) for key in self._keys])  # noqa: C419 - a list, so every key is compared (no early exit)

    def admin(self, token: str | None) -> bool:
        """Whether `token` is the operator token (X-Admin-Token)."""
        if token is None or self._admin is None:
            return False
        return hmac.compare_digest(token.encode("utf-8", "replace"), self._admin)


class ApiKeyMiddleware:
    """401 (with `WWW-Authenticate: Bearer`) for a protected request without a valid key.

    `for_reads=False` leaves reads open and still guards writes: once keys exist, a write always
    needs one.
    """

    def __init__(self, app: ASGIApp, keys: ApiKeys, for_reads: bool = True) -> None:
        self.app = app
        self.keys = keys
        self.for_reads = for_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys and self._needs_key(scope):
            token = bearer_token(scope)
            if not self.keys.valid(token) and not self.keys.admin(header(scope, b"x-admin-token")):
                message = MESSAGE_MISSING if token is None else MESSAGE_INVALID
                response = error_response(Request(scope), 401, message, code="invalid_api_key",
                                          headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _needs_key(self, scope: Scope) -> bool:
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if method == "OPTIONS" or not is_protected(path):  # CORS preflights never carry credentials
            return False
        return self.for_reads or is_write(method, path)
