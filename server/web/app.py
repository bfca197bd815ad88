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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..core.errors import ApiError
from ..core.ratelimit import RateLimiter
from ..live.brokers import broker_from_url
from ..live.driver import HubDriver
from ..settings import Settings
from ..store.db import Database, DatabaseBusy, is_locked
from ..store.media import MediaUnavailable, media_store_from_url
from ..store.payloads import encode
from . import openapi, requestlog
from .assets import Assets
from .cardmaker import CardMaker
from .imaging import ImageWorkers
from .latecards import resume
from .metrics import Metrics
from .requestmetrics import RequestMetrics
from .routes import (
    admin,
    api,
    desk,
    directory,
    drafts,
    health,
    media,
    pages,
    people,
    photos,
    queue,
    static,
    tokens,
    ws,
)
from .scheduler import Scheduler
from .services import Services
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
        live = HubDriver(settings=settings, db=db, broker=broker)
        await live.start()
        metrics = Metrics.from_env(settings) if settings.metrics else None
        if metrics is not None:
            metrics.start(live)
        app.state.metrics = metrics
        media_store = media_store_from_url(settings.media_location, settings)
        imaging = ImageWorkers(settings.media_workers)
        cards = CardMaker(settings, media=media_store, imaging=imaging)
        app.state.services = Services(
            settings=settings, db=db, broker=broker, live=live,
            media=media_store, imaging=imaging, cards=cards,
            write_limiter=RateLimiter(rate=settings.write_rate, burst=settings.write_burst),
            auth_failures=RateLimiter(rate=settings.auth_failures_per_minute / 60,
                                      burst=settings.auth_failures_per_minute),
            account_failures=RateLimiter(rate=settings.account_failures_per_minute / 60,
                                            burst=settings.account_failures_per_minute),
        )
        # What the server calls first when it shuts down (serving.py): every live
        # connection gets its going-away close while the sockets still work.
        app.state.close_connections = live.close_all
        # Cards a stopped process left pending are made again, in the background.
        cards.background(resume(app.state.services))
        # Scheduled posts go out from every process (whichever asks first publishes).
        scheduler = Scheduler(app.state.services)
        scheduler.start()
        try:
            yield
        finally:
            app.state.close_connections = None
            await scheduler.stop()
            # Late cards publish through the hub driver: stop them first.
            await cards.close()
            await imaging.close()
            if metrics is not None:
                await metrics.stop()
            await live.stop()
            await broker.disconnect()
            await db.dispose()

    app = BulletinApp(
        routes=[*health.routes(), *api.routes(), *drafts.routes(), *ws.routes(), *openapi.routes(),
                *static.routes(), *pages.routes(), *desk.routes(), *admin.routes(),
                *photos.routes(), *directory.routes(), *queue.routes(), *desk.catch_all(),
                *tokens.routes(), *media.routes(), *people.routes()],
        middleware=[
            # Outermost: the id is set before anything logs, and the 500 carries it.
            Middleware(requestlog.RequestIds),
            Middleware(requestlog.AccessLog),
            *([Middleware(RequestMetrics, metrics_port=settings.metrics_port)]
              if settings.metrics else []),
            Middleware(UnexpectedErrors),
            *([Middleware(AllowedHosts, hosts=settings.allowed_hosts)]
              if settings.allowed_hosts else []),
            Middleware(SecurityHeaders),
            Middleware(
                CORSMiddleware, allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key",
                               "Last-Event-ID"],
                expose_headers=["Retry-After", "Idempotent-Replayed", requestlog.HEADER],
                max_age=600,
            ),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            DatabaseBusy: _database_unavailable,
            sa.exc.OperationalError: _database_unavailable,
            sa.exc.InterfaceError: _database_unavailable,
            ConnectionError: _database_unavailable,
            TimeoutError: _database_unavailable,
            MediaUnavailable: _media_unavailable,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.assets = assets = Assets(minify=settings.minify_assets)
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
    if isinstance(exc, DatabaseBusy) or is_locked(exc):
        log.warning("database busy for %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"error": {"code": "database_busy",
                       "message": "the database is busy with other writes; nothing was "
                                  "changed, retry shortly", "details": None}},
            503, headers={"Retry-After": "1"})
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"error": {"code": "database_unavailable",
                   "message": "the database is unavailable; nothing was changed, retry shortly",
                   "details": None}},
        503, headers={"Retry-After": "2"})


async def _media_unavailable(request: Request, exc: Exception) -> Response:
    # An upload fails before its row is written (its files are removed again), and a file
    # read fails before anything is sent: nothing changed, a retry may work.
    log.warning("media storage unavailable for %s %s: %s", request.method, request.url.path,
                exc)
    return JSONResponse(
        {"error": {"code": "media_storage_unavailable",
                   "message": "the photo storage is unavailable; nothing was changed, retry "
                              "shortly", "details": None}},
        503, headers={"Retry-After": "2"})


# Pages for people answer an unexpected error in HTML (unless they ask for JSON);
# everything else, /api/ first, in the API's JSON.
_HTML_PREFIXES = ("/live", "/embed", "/editor")
_HTML_ERROR = ("<!doctype html><html lang=en><meta charset=utf-8><title>Something went wrong"
               "</title><h1>Something went wrong</h1><p>The server could not answer this "
               "request. Nothing was changed; please try again in a moment.</p>"
               "<p><small>Request {request_id}</small></p></html>")
_INTERNAL_MESSAGE = "the server could not answer this request; retry shortly"


def _wants_html(scope: Scope) -> bool:
    if not str(scope.get("path", "")).startswith(_HTML_PREFIXES):
        return False
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"application/json" not in accept


class UnexpectedErrors:
    """Any exception a handler did not expect is a 500 in the JSON error shape, with the
    request id (an HTML page on the reader's and editor's pages), never plain text, and
    one log line per cause per interval (the log throttle keeps the traceback to the
    first), which carries the request id too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # the client left mid-request (or its body timed out): nothing to answer
        except Exception as exc:
            route = getattr(scope.get("route"), "path", None) or scope.get("path")
            log.error("unexpected %s on %s %s", type(exc).__name__, scope.get("method"),
                      route, exc_info=exc)
            if started:
                return  # the response is under way: the connection is closed
            request_id = requestlog.current()
            if _wants_html(scope):
                body = _HTML_ERROR.format(request_id=request_id or "-").encode()
                kind = b"text/html; charset=utf-8"
            else:
                body = encode({"error": {"code": "internal_error", "message": _INTERNAL_MESSAGE,
                                         "details": None, "request_id": request_id}}).encode()
                kind = b"application/json"
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
            ]})
            await send({"type": "http.response.body", "body": body})


class AllowedHosts:
    """Refuse requests for host names not in BULLETIN_ALLOWED_HOSTS (400 invalid_host):
    pages take their links from the Host header when BULLETIN_PUBLIC_URL is unset, and
    caches share those pages. Health checks answer whatever address a probe uses."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)
        self.wildcards = tuple(h[1:] for h in self.hosts if h.startswith("*."))

    def allowed(self, host: str) -> bool:
        """Whether ``host`` (without its port) is one of ours."""
        host = host.lower()
        return host in self.hosts or "*" in self.hosts or host.endswith(self.wildcards)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in ("/healthz", "/readyz"):
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        host = raw.rsplit(":", 1)[0] if not raw.endswith("]") else raw
        if self.allowed(host.strip("[]")):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": {"code": "invalid_host", "message": "this server does not answer "
                       "for that host name", "details": None}}, 400)
        await response(scope, receive, send)


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
