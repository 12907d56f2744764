"""Per-client rate limits on /api and /v1: 429 with `Retry-After` once a client is over its limit.

Writes (feedback; knowledge-base changes later) are limited by default (`POLICY_QA_RATE_LIMIT_WRITES`),
reads only when `POLICY_QA_RATE_LIMIT_READS` is set. The counting is the `limits` package's moving
window, kept in this process's memory: with several server processes each counts on its own, so a
global limit belongs in the proxy in front (nginx `limit_req`).

A client is its API key when it sent a configured one (a hash of it, never the key), else its IP
address. An unknown bearer token does not count as an identity, or rotating made-up tokens would
escape the per-address limit.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from .api_errors import error_response
from .security import ApiKeys, bearer_token, header, is_protected, is_write

OFF = ("", "off", "none", "0")


class RateLimitConfigError(ValueError):
    """A limit setting that is not in the `limits` notation ('20/minute', '5 per second')."""


def parse_limit(text: str | None, setting: str) -> RateLimitItem | None:
    """'20/minute' → a limit; 'off' (or empty) → None; anything else a clear startup error."""
    if text is None or text.strip().lower() in OFF:
        return None
    try:
        return parse(text.strip())
    except ValueError:
        raise RateLimitConfigError(
            f"{setting}={text!r} 不是有效的限流设置：应写作“次数/时间单位”，如 20/minute、5/second，或 off"
        ) from None


def client_identity(scope: Scope, keys: ApiKeys) -> str:
    """'key:<hash>' for a request with a configured API key, 'admin' with the operator token, else
    'ip:<address>'."""
    token = bearer_token(scope)
    if token is not None and keys.valid(token):
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]  # 64 bits: unique among a few keys
    if keys.admin(header(scope, b"x-admin-token")):
        return "admin"
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class RateLimiter:
    """Moving-window counters per (kind, client); `hit` returns the seconds to wait, or 0 when allowed."""

    def __init__(self, writes: RateLimitItem | None, reads: RateLimitItem | None) -> None:
        self.limits = {"write": writes, "read": reads}
        self._strategy = MovingWindowRateLimiter(MemoryStorage())

    def __bool__(self) -> bool:
        return any(self.limits.values())

    def hit(self, kind: str, client: str) -> int:
        item = self.limits.get(kind)
        if item is None or self._strategy.hit(item, kind, client):
            return 0
        reset_at = self._strategy.get_window_stats(item, kind, client).reset_time
        return max(1, math.ceil(reset_at - time.time()))  # Retry-After is whole seconds, at least 1


class RateLimitMiddleware:
    """Count each protected request against its client's limit; over it, a 429 in the surface's shape."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, identify: Callable[[Scope], str],
                 on_limited: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.identify = identify
        self.on_limited = on_limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if scope["type"] == "http" and self.limiter and method != "OPTIONS" and is_protected(path):
            kind = "write" if is_write(method, path) else "read"
            wait = self.limiter.hit(kind, self.identify(scope))
            if wait:
                if self.on_limited is not None:
                    self.on_limited(kind)
                item = self.limiter.limits[kind]
                message = f"请求过于频繁：每个客户端最多 {item.amount} 次/{_unit(item)}，请 {wait} 秒后再试"
                response = error_response(Request(scope), 429, message, code="rate_limit_exceeded",
                                          headers={"Retry-After": str(wait)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


_UNITS = {"second": "秒", "minute": "分钟", "hour": "小时", "day": "天", "month": "月", "year": "年"}


def _unit(item: RateLimitItem) -> str:
    unit = _UNITS.get(item.GRANULARITY.name, item.GRANULARITY.name)
    return unit if item.multiples == 1 else f"{item.multiples} {unit}"
