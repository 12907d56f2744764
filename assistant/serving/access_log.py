"""Request ids and one structured JSON log line per request (id, method, route, status, latency and,
for answers, the confidence), so an operator can follow one caller's request through the logs.

`X-Request-ID` is taken from the request when it looks like an id (a proxy such as nginx may set one),
generated otherwise, and echoed on the response. Routes add fields through `request.state.log`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("assistant.access")
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HEADER = b"x-request-id"


def request_id(scope: Scope) -> str:
    """The caller's id when it is a plain token of at most 64 characters, else a new one."""
    for name, value in scope.get("headers", []):
        if name == HEADER:
            text = value.decode("latin-1")
            if _ID.match(text):
                return text
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Assign the request id, echo it, and log the request as one JSON line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["log"] = {}
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record = {
                "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "request_id": rid,
                "method": scope.get("method"),
                "route": scope.get("path"),
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                **state.get("log", {}),
            }
            logger.info(json.dumps(record, ensure_ascii=False))
