"""Request ids and the access line: one log line per HTTP request, when it completes.

``RequestIds`` (asgi-correlation-id's middleware) gives every HTTP request an id: the
client's ``X-Request-ID`` when it is sane (1-64 characters of ``A-Z a-z 0-9 . _ -``),
else a new one. The id is echoed in the response's ``X-Request-ID``, kept in a context
variable for the request's duration, and put on every log line written meanwhile
(logsetup.LineContext).

``AccessLog`` writes ``bulletin.access``'s line when the response is over: method, route
template (``/api/streams/{slug}/posts``, never the raw path, whose ids and typos would
make every line unique), status and duration in milliseconds. Lines that would flood are
DEBUG instead of INFO: the probes (``/healthz``, ``/readyz``, which load balancers call
every few seconds), the versioned static files and photo files (cached, and behind a
CDN in production) and SSE streams, which are live connections like WebSocket ones: a
reader's stream is one line when it ends, at DEBUG, and the summary line counts them. A
5xx among them is still INFO. The WebSocket endpoint is served ahead of the middleware: it writes no
access lines at all.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from asgi_correlation_id import CorrelationIdMiddleware
from asgi_correlation_id.context import correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Routes whose successful answers are logged at DEBUG (see the module's docstring).
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/static/{version}/{name}", "/media/{name}"})

log = logging.getLogger("bulletin.access")


def sane(value: str) -> bool:
    """Whether a client's X-Request-ID is kept: 1-64 of ``[A-Za-z0-9._-]``."""
    return _SANE.fullmatch(value) is not None


def new_request_id() -> str:
    """A fresh request id: 32 hex digits."""
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str | None:
    """The path template of the route that served the request (``/api/posts/{id}``),
    as the router left it in ``scope["route"]``; None when no route matched."""
    return getattr(scope.get("route"), "path", None)


def current() -> str | None:
    """The id of the HTTP request being served (None outside one)."""
    return correlation_id.get()


class RequestIds(CorrelationIdMiddleware):
    """asgi-correlation-id's middleware with Bulletin's header, check and generator."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, header_name=HEADER, generator=new_request_id, validator=sane)


class AccessLog:
    """One ``bulletin.access`` line per HTTP request, when its response is over."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        stream = False

        async def watch(message: Message) -> None:
            nonlocal status, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                stream = any(name.lower() == b"content-type"
                             and value.startswith(b"text/event-stream")
                             for name, value in message.get("headers", ()))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = route_template(scope)
            quiet = (stream or route in QUIET_ROUTES) and (status or 0) < 500
            level = logging.DEBUG if quiet else logging.INFO
            if log.isEnabledFor(level):
                duration = (time.perf_counter() - started) * 1000
                method = scope.get("method", "")
                # Unanswered (the client left first): no status.
                log.log(level, "%s %s %s %.1f ms", method, route or "(no route)",
                        status if status is not None else "-", duration,
                        extra={"method": method, "route": route, "status": status,
                               "duration_ms": round(duration, 1)})
