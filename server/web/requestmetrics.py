"""HTTP requests measured, and ``/metrics`` answered: a plain ASGI middleware.

Each request is counted by its route's template (``/api/streams/{slug}``), never its
path, so that the series stay few whatever addresses clients make up; a path no route
matches is ``unmatched``. Event streams are counted when they start but not timed (they
last as long as the reader stays); the WebSocket is dispatched before the middleware and
is measured by the hub's counters instead.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics
from .requestlog import route_template

PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_NOT_FOUND = (b'{"error":{"code":"not_found","message":"no such endpoint","details":null}}')


class RequestMetrics:
    """Counts and times HTTP requests; answers ``/metrics`` to those it allows."""

    def __init__(self, app: ASGIApp, metrics_port: int = 0) -> None:
        self.app = app
        self.metrics_port = metrics_port
        # (route, method, status) → the counter's child and its labels.
        self._children: dict[tuple[str, str, int], tuple[Any, tuple[str, str, str]]] = {}
        # The same → the histogram's child, made on the first request it times (event
        # streams are never timed, so they get no empty histogram).
        self._timers: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
        port = self.metrics_port
        if port:
            server = scope.get("server")
            if server is not None and server[1] == port:
                await self._own_port(scope, send, metrics)
                return
        elif scope["path"] == PATH and metrics is not None:
            client = scope.get("client")
            if metrics.allows(client[0] if client else None):
                await _answer(send, metrics)
                return
        if metrics is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        labels: tuple[str, str, str] | None = None
        streaming = False

        async def watch(message: Message) -> None:
            nonlocal labels, streaming
            if message["type"] == "http.response.start":
                counter, labels = self._counter(metrics, scope, message["status"])
                counter.inc()
                for name, value in message.get("headers", ()):
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        streaming = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if labels is not None and not streaming:
                timer = self._timers.get(labels)
                if timer is None:
                    timer = self._timers[labels] = metrics.durations.labels(*labels)
                timer.observe(time.perf_counter() - started)

    async def _own_port(self, scope: Scope, send: Send, metrics: Metrics | None) -> None:
        """The metrics port: ``/metrics`` to those allowed, a 404 to everything else."""
        client = scope.get("client")
        if (scope["path"] == PATH and metrics is not None
                and metrics.allows(client[0] if client else None)):
            await _answer(send, metrics)
            return
        await send({"type": "http.response.start", "status": 404, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_NOT_FOUND)).encode())]})
        await send({"type": "http.response.body", "body": _NOT_FOUND})

    def _counter(self, metrics: Metrics, scope: Scope,
                 status: int) -> tuple[Any, tuple[str, str, str]]:
        route = self._template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (route, method, status)
        found = self._children.get(key)
        if found is None:
            labels = (route, method, str(status))
            found = self._children[key] = (metrics.requests.labels(*labels), labels)
        return found

    def _template(self, scope: Scope) -> str:
        return route_template(scope) or UNMATCHED


async def _answer(send: Send, metrics: Metrics) -> None:
    body = metrics.render()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", CONTENT_TYPE_LATEST.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
