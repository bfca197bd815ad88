"""The application factory: routes, error handlers and the lifespan that owns resources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from . import openapi
from .assets import Assets
from .brokers import broker_from_url
from .db import Database
from .errors import ApiError
from .live import Live
from .ratelimit import RateLimiter
from .routes import api, editor, health, pages, static, ws
from .services import Services
from .settings import Settings
from .templating import Pages

log = logging.getLogger("bulletin")

_HTTP_CODES = {
    400: "bad_request", 401: "authentication_required", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
}


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app. Nothing is opened until the lifespan starts."""
    settings = (settings or Settings.from_env()).with_secret()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        broker = broker_from_url(settings.broker_url)
        await broker.connect()
        live = Live(settings=settings, db=db, broker=broker)
        await live.start()
        app.state.services = Services(
            settings=settings, db=db, broker=broker, live=live,
            write_limiter=RateLimiter(rate=settings.write_rate, burst=settings.write_burst),
            auth_failures=RateLimiter(rate=settings.auth_failures_per_minute / 60,
                                      burst=settings.auth_failures_per_minute),
        )
        try:
            yield
        finally:
            await live.stop()
            await broker.disconnect()
            await db.dispose()

    app = BulletinApp(
        routes=[*health.routes(), *api.routes(), *ws.routes(), *openapi.routes(),
                *static.routes(), *pages.routes(), *editor.routes()],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                CORSMiddleware, allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key",
                               "Last-Event-ID"],
                expose_headers=["Retry-After", "Idempotent-Replayed"], max_age=600,
            ),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            sa.exc.OperationalError: _database_unavailable,
            sa.exc.InterfaceError: _database_unavailable,
            ConnectionError: _database_unavailable,
            TimeoutError: _database_unavailable,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.assets = assets = Assets()
    app.state.pages = Pages(assets)
    return app


class BulletinApp(Starlette):
    """Starlette, with the live socket dispatched ahead of the middleware stack.

    Every middleware here is for HTTP (security headers, CORS) or turns exceptions into
    HTTP responses; around a WebSocket each would only keep a coroutine frame alive for
    as long as the reader stays, about 5 KB per connection in all. ``/ws`` handles its
    own errors, so it is called directly.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path, root = scope["path"], scope.get("root_path", "")
            if (path[len(root):] if root and path.startswith(root) else path) == ws.PATH:
                scope["app"] = self
                await ws.websocket_endpoint(WebSocket(scope, receive, send))
                return
        await super().__call__(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(
        exc.status_code, str(exc.detail))
    return JSONResponse({"error": {"code": code, "message": message, "details": None}},
                        exc.status_code, headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Raised before commit, so nothing was half-written: the client may simply retry.
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"error": {"code": "database_unavailable",
                   "message": "the database is unavailable; nothing was changed, retry shortly",
                   "details": None}},
        503, headers={"Retry-After": "2"})


class SecurityHeaders:
    """Headers every response carries: no sniffing, no framing of API answers, no caching
    of writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"strict-origin-when-cross-origin")]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store" if scope["method"] != "GET"
                                  else b"no-cache"))
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)
