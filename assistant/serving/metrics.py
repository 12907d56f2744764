"""Prometheus metrics at /metrics: requests and latency by route template, answers by confidence and
mode, LLM calls and fallbacks, rate-limited requests, and the index's age.

Each app gets its own `CollectorRegistry` (tests build several apps in one process; the global
registry would refuse the second set of names). Metrics are per process, like the rate limits.

LLM calls and fallbacks are read off each `Answer` here in the serving layer, so the answering
package needs no hook into serving: a question routed to the model (generative mode, an LLM
configured, not declined: declined questions never reach the model) counts as a call, and such a
call whose answer came back extractive counts as a fallback (the model failed, timed out, or said
too little its clauses support).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from fastapi import Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..answering.generative import resolve_mode
from ..schema import Answer, Confidence, Mode
from ..service import Assistant

# Extractive answers take tens of milliseconds, generative ones seconds, up to the LLM timeout (30 s
# by default) and a little beyond; the buckets span that range at roughly 2-2.5x steps.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "other"  # no route template (unknown paths, static files): one bounded label
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "OTHER"


class Metrics:
    """The app's collectors; `observe_answer` is called by every route that returns an answer."""

    def __init__(self, current_assistant: Callable[[], Assistant | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("policy_qa_http_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("policy_qa_http_request_duration_seconds",
                                 "Time to the end of the response (a stream's whole length), by route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.answers = Counter("policy_qa_answers", "Answers by confidence (high|low|declined) and mode",
                               ["confidence", "mode"], registry=self.registry)
        self.abstentions = Counter("policy_qa_abstentions", "Questions declined (not answered from the corpus)",
                                   registry=self.registry)
        self.llm_calls = Counter("policy_qa_llm_calls", "Questions sent to the LLM (generative mode)",
                                 registry=self.registry)
        self.llm_fallbacks = Counter("policy_qa_llm_fallbacks",
                                     "LLM calls answered by the extractive fallback instead",
                                     registry=self.registry)
        self.rate_limited = Counter("policy_qa_rate_limited", "Requests refused with 429, by kind (read|write)",
                                    ["kind"], registry=self.registry)
        self._current = current_assistant
        Gauge("policy_qa_index_loaded", "1 when an index is loaded and serving, else 0",
              registry=self.registry).set_function(lambda: float(self._current() is not None))
        Gauge("policy_qa_index_age_seconds", "Seconds since the serving index was built (manifest built_at); "
              "-1 without an index", registry=self.registry).set_function(self._index_age)

    def _index_age(self) -> float:
        assistant = self._current()
        if assistant is None:
            return -1.0
        try:
            built = datetime.fromisoformat(assistant.manifest.built_at)
        except ValueError:
            return -1.0
        return max(0.0, time.time() - built.timestamp())

    def observe_answer(self, answer: Answer, assistant: Assistant, requested_mode: Mode | str | None) -> None:
        """Count one answer, and the LLM call (and fallback) behind it if there was one."""
        self.answers.labels(answer.confidence.value, answer.mode.value).inc()
        if answer.abstained:
            self.abstentions.inc()
        try:
            routed = resolve_mode(requested_mode, assistant.generator is not None) is Mode.generative
        except Exception:  # noqa: BLE001 - an unknown mode was already refused; never fail a request here
            routed = False
        if routed and assistant.generator is not None and answer.confidence is not Confidence.declined:
            self.llm_calls.inc()
            if answer.mode is not Mode.generative:
                self.llm_fallbacks.inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_label(scope: Scope, routes: Sequence[BaseRoute] = ()) -> str:
    """The route's template (`/api/clauses/{clause_id:path}`), never the raw path: raw paths would make
    one time series per clause id or probe. A request answered before routing (401, 429, 405) is
    matched against `routes` here, so a refused feedback still counts under /api/feedback."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if isinstance(r, APIRoute) and r.path_regex.match(scope.get("path", ""))),
                     None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    """Count and time every HTTP request once it has finished."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], Sequence[BaseRoute]] = list) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if nothing was sent (InternalErrorMiddleware answers inside)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            method = scope.get("method", "GET") if scope.get("method") in METHODS else "OTHER"
            route = route_label(scope, self.routes())
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
