"""The JSON API under /api/: streams, posts and the event log."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.errors import ApiError
from ...store import accounts, eventlog, sessions
from ...store.credentials import SCOPE_KEY, Credential
from ...store.models import STREAM_STATUSES, Editor, Event, Stream, utcnow
from ...store.payloads import encode, iso, stream_json
from .. import eventstream
from ..services import Services, services
from ..validation import (
    PostCreate,
    PostPatch,
    StreamCreate,
    StreamPatch,
    int_param,
    parse_body,
    read_body,
)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
# Ids are 32-bit integers in the database; a larger one cannot exist.
MAX_ID = 2**31 - 1


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded the way stored events are."""
    return Response(encode(data), status, headers, media_type="application/json")


# --- who is calling ----------------------------------------------------------------------


async def caller(request: HTTPConnection, *, required: bool) -> Editor | None:
    """The editor behind the request's bearer token or desk session; None for readers.

    A request that sends credentials must send good ones: a bad token is a 401 even on
    endpoints that anonymous readers may use, so that a broken integration is noticed.
    Without an Authorization header, the editor desk's session cookie counts; for a
    write it must come with the session's CSRF token in ``X-CSRF-Token``. The cookie
    counts only from the server's own pages: a request whose Origin is another site (even
    one in BULLETIN_ALLOWED_ORIGINS, which may open sockets and read public streams) is
    anonymous, so that no other page can read drafts through an editor's browser. A stale
    cookie is no credential either. What the caller authenticated with is kept in the
    scope (``credential``), for connections that must end when it is revoked.
    """
    svc = services(request)
    header = request.headers.get("authorization")
    if header is None:
        signed_in = await sessions.current(request) if same_origin(request) else None
        if signed_in is not None:
            assert signed_in.editor.id is not None
            request.scope[SCOPE_KEY] = Credential(signed_in.editor.id,
                                                   session_id=signed_in.session.id)
            if request.scope.get("method", "GET") not in SAFE_METHODS and not sessions.csrf_ok(
                    signed_in, request.headers.get(sessions.CSRF_HEADER)):
                raise ApiError(403, "csrf_failed",
                               "a write with the session cookie needs the page's CSRF token "
                               "in X-CSRF-Token; reload the page and retry")
            return signed_in.editor
        if required:
            raise ApiError(401, "authentication_required",
                           "send an API token: Authorization: Bearer <token> "
                           "(or sign in to the editor desk)",
                           headers={"WWW-Authenticate": "Bearer"})
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise ApiError(401, "invalid_authorization",
                       "the Authorization header must be 'Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client else "unknown"
    async with svc.db.read() as session:
        found = await accounts.editor_for_token(session, plain=token)
    if found is None:
        wait = svc.auth_failures.take(client, svc.clock())
        if wait:
            raise ApiError(429, "too_many_failures", "too many failed sign-ins; wait and retry",
                           headers={"Retry-After": svc.auth_failures.retry_after_header(wait)})
        raise ApiError(401, "invalid_token", "the API token is unknown or revoked",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    editor, token_row = found
    if editor.disabled:
        raise ApiError(403, "editor_disabled", "this editor account is disabled")
    assert editor.id is not None
    request.scope[SCOPE_KEY] = Credential(editor.id, token_id=token_row.id)
    last = token_row.last_used_at
    if last is None or last < utcnow() - accounts.TOKEN_TOUCH_INTERVAL:
        async with svc.db.write() as session:
            assert token_row.id is not None
            await accounts.touch_token(session, token_id=token_row.id)
    return editor


def credential(request: HTTPConnection) -> Credential | None:
    """What ``caller`` found the request authenticated with (None: anonymous)."""
    found: Credential | None = request.scope.get(SCOPE_KEY)
    return found


def same_origin(request: HTTPConnection) -> bool:
    """Whether the request comes from the server's own pages, or from no page at all.

    Browsers send Origin on WebSocket upgrades and on cross-origin requests; a page of
    the server's own origin (its Host, or BULLETIN_PUBLIC_URL) may use the cookie.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    public = services(request).settings.public_url.rstrip("/")
    if public and origin == urlsplit(public)._replace(path="", query="", fragment="").geturl():
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host")
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


async def writer(request: Request) -> Editor:
    """The editor making a write, within their rate limit."""
    editor = await caller(request, required=True)
    assert editor is not None
    limit_writes(request, editor)
    return editor


def limit_writes(request: Request, editor: Editor) -> None:
    """Spend one of the editor's writes; a 429 when they are over their rate."""
    svc = services(request)
    wait = svc.write_limiter.take(f"editor:{editor.id}", svc.clock())
    if wait:
        raise ApiError(429, "rate_limited", "too many writes; slow down and retry",
                       {"retry_after": round(wait, 3)},
                       headers={"Retry-After": svc.write_limiter.retry_after_header(wait)})


# --- idempotent creation -----------------------------------------------------------------


Created = tuple[int, dict[str, Any], str, list[Event]]


async def idempotent(
    request: Request, editor: Editor, raw: bytes,
    create: Callable[[AsyncSession], Awaitable[Created]], *, key: str | None = None,
) -> Response:
    """Run ``create`` at most once per ``Idempotency-Key``; replay its response on retries.

    ``create`` runs inside the write transaction and returns (status, body, stream slug,
    events); the response is stored in the same transaction, and the events are
    published once it has committed. ``key`` is the header's unless given (the desk's
    forms send theirs as a field).
    """
    svc = services(request)
    key = key if key is not None else request.headers.get("idempotency-key")
    ttl = timedelta(hours=svc.settings.idempotency_ttl_hours)
    fingerprint = hashlib.sha256(
        b"\0".join([request.method.encode(), request.url.path.encode(), raw])
    ).hexdigest()
    assert editor.id is not None
    if key is not None:
        if not IDEMPOTENCY_KEY_RE.match(key):
            raise ApiError(400, "invalid_idempotency_key",
                           "Idempotency-Key must be 1-200 printable ASCII characters")
        replay = await _replay(svc, editor.id, key, fingerprint, ttl)
        if replay is not None:
            return replay
    try:
        async with svc.db.write() as session:
            status, body, slug, events = await create(session)
            if key is not None:
                await eventlog.save_idempotent(
                    session, editor_id=editor.id, key=key, fingerprint=fingerprint,
                    status_code=status, response=encode(body), ttl=ttl)
    except sa.exc.IntegrityError:
        # The same key raced us and committed first; its response is the answer.
        replay = None if key is None else await _replay(svc, editor.id, key, fingerprint, ttl)
        if replay is None:
            raise
        return replay
    await svc.publish(slug, events)
    return json_response(body, status)


async def _replay(
    svc: Services, editor_id: int, key: str, fingerprint: str, ttl: timedelta
) -> Response | None:
    async with svc.db.read() as session:
        row = await eventlog.find_idempotent(session, editor_id=editor_id, key=key, ttl=ttl)
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was used for a different request")
    return Response(row.response, row.status_code, {"Idempotent-Replayed": "true"},
                    media_type="application/json")


# --- streams -----------------------------------------------------------------------------


async def list_streams(request: Request) -> Response:
    """GET /api/streams?status=live&before=<cursor>&limit=N."""
    editor = await caller(request, required=False)
    settings = services(request).settings
    status = request.query_params.get("status")
    if status is not None and status not in STREAM_STATUSES:
        raise ApiError(400, "invalid_parameter", "status must be draft, live or ended",
                       {"parameter": "status"})
    limit = int_param(request, "limit", default=settings.max_page_size, minimum=1,
                      maximum=settings.max_page_size) or settings.max_page_size
    before = _cursor(request)
    async with services(request).db.read() as session:
        streams, next_cursor = await eventlog.list_streams(
            session, include_drafts=editor is not None, status=status, before=before,
            limit=limit)
    cursor = None if next_cursor is None else str(next_cursor)
    query = f"status={status}&" if status else ""
    return json_response({
        "streams": [stream_summary(s) for s in streams],
        "next_cursor": cursor,
        "links": {"next": None if cursor is None else
                  f"/api/streams?{query}before={cursor}&limit={limit}"},
    })


def stream_summary(stream: Stream) -> dict[str, Any]:
    """A stream's JSON with its links."""
    data = stream_json(stream)
    data["links"] = {
        "self": f"/api/streams/{stream.slug}",
        "posts": f"/api/streams/{stream.slug}/posts",
        "events": f"/api/streams/{stream.slug}/events",
    }
    return data


async def create_stream(request: Request) -> Response:
    """POST /api/streams."""
    editor = await writer(request)
    svc = services(request)
    raw = await read_body(request, max_bytes=svc.settings.max_body_bytes)
    data = parse_body(raw, StreamCreate)

    async def create(session: AsyncSession) -> Created:
        stream = await eventlog.create_stream(
            session, slug=data.slug, title=data.title, description=data.description,
            status=data.status)
        return 201, stream_summary(stream) | {"pinned": []}, stream.slug, []

    return await idempotent(request, editor, raw, create)


async def get_stream(request: Request) -> Response:
    """GET /api/streams/{slug}."""
    editor = await caller(request, required=False)
    slug = _slug(request)
    async with services(request).db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=editor is not None)
        pinned = await eventlog.pinned_posts(session, stream=stream)
    return json_response(stream_summary(stream) | {"pinned": [p.to_json() for p in pinned]})


async def update_stream(request: Request) -> Response:
    """PATCH /api/streams/{slug}."""
    await writer(request)
    svc = services(request)
    slug = _slug(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes),
                      StreamPatch)
    if not data.model_fields_set:
        raise ApiError(422, "validation_error", "send at least one of title, description, status")
    async with svc.db.write() as session:
        stream, events = await eventlog.update_stream(
            session, slug=slug, title=data.title, description=data.description,
            status=data.status)
        pinned = await eventlog.pinned_posts(session, stream=stream)
        body = stream_summary(stream) | {"pinned": [p.to_json() for p in pinned]}
    await svc.publish(slug, events)
    return json_response(body)


def _slug(request: Request) -> str:
    slug: str = request.path_params["slug"]
    if not eventlog.SLUG_RE.match(slug):
        # Not a slug any stream can have; answering here keeps odd bytes out of queries.
        raise ApiError(404, "stream_not_found", f"no stream {slug!r}")
    return slug


# --- posts -------------------------------------------------------------------------------


async def list_posts(request: Request) -> Response:
    """GET /api/streams/{slug}/posts?before=<cursor>&limit=N."""
    editor = await caller(request, required=False)
    settings = services(request).settings
    slug = _slug(request)
    limit = int_param(request, "limit", default=settings.page_size, minimum=1,
                      maximum=settings.max_page_size)
    before = _cursor(request)
    async with services(request).db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=editor is not None)
        views, next_cursor = await eventlog.list_posts(
            session, stream=stream, before=before, limit=limit or settings.page_size)
    cursor = None if next_cursor is None else str(next_cursor)
    return json_response({
        "stream": slug,
        "seq": stream.seq,
        "posts": [v.to_json() for v in views],
        "next_cursor": cursor,
        "links": {"next": None if cursor is None else
                  f"/api/streams/{slug}/posts?before={cursor}&limit={limit}"},
    })


def _cursor(request: Request) -> int | None:
    raw = request.query_params.get("before")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ApiError(400, "invalid_cursor", "before must be a cursor from next_cursor",
                       {"parameter": "before"})
    return min(int(raw), MAX_ID)


async def create_post(request: Request) -> Response:
    """POST /api/streams/{slug}/posts."""
    editor = await writer(request)
    svc = services(request)
    slug = _slug(request)
    raw = await read_body(request, max_bytes=svc.settings.max_body_bytes)
    data = parse_body(raw, PostCreate)
    _check_length(svc, data.body)

    async def create(session: AsyncSession) -> Created:
        view, events = await eventlog.create_post(
            session, slug=slug, author=editor, body=data.body, pinned=data.pinned)
        return 201, view.to_json() | {"seq": events[-1].seq}, slug, events

    return await idempotent(request, editor, raw, create)


def _check_length(svc: Services, body: str) -> None:
    limit = svc.settings.max_post_chars
    if len(body) > limit:
        raise ApiError(422, "post_too_long", f"a post is at most {limit} characters",
                       {"max_chars": limit, "chars": len(body)})


async def get_post(request: Request) -> Response:
    """GET /api/posts/{id}."""
    editor = await caller(request, required=False)
    async with services(request).db.read() as session:
        view = await eventlog.get_post(session, post_id=_post_id(request),
                                    include_drafts=editor is not None)
    return json_response(view.to_json())


async def update_post(request: Request) -> Response:
    """PATCH /api/posts/{id}."""
    editor = await writer(request)
    svc = services(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes), PostPatch)
    if data.body is None and data.pinned is None:
        raise ApiError(422, "validation_error", "send body, pinned or both")
    if data.body is not None:
        _check_length(svc, data.body)
    async with svc.db.write() as session:
        view, events = await eventlog.edit_post(
            session, post_id=_post_id(request), editor=editor, body=data.body,
            pinned=data.pinned)
        body = view.to_json() | {"seq": events[-1].seq if events else None}
    await svc.publish(view.stream_slug, events)
    return json_response(body)


async def delete_post(request: Request) -> Response:
    """DELETE /api/posts/{id}."""
    editor = await writer(request)
    svc = services(request)
    async with svc.db.write() as session:
        view, events = await eventlog.delete_post(
            session, post_id=_post_id(request), editor=editor)
        body = view.to_json() | {"seq": events[-1].seq}
    await svc.publish(view.stream_slug, events)
    return json_response(body)


async def post_revisions(request: Request) -> Response:
    """GET /api/posts/{id}/revisions: a post's earlier texts (editors only)."""
    await caller(request, required=True)
    post_id = _post_id(request)
    async with services(request).db.read() as session:
        view = await eventlog.get_post(session, post_id=post_id, include_drafts=True)
        revisions = await eventlog.post_revisions(session, post_id=post_id)
    return json_response({
        "post": view.to_json(),
        "revisions": [
            {"revision": r.revision, "body": r.body, "html": r.html, "author_id": r.author_id,
             "replaced_at": iso(r.replaced_at), "replaced_by_id": r.replaced_by_id}
            for r in revisions
        ],
    })


def _post_id(request: Request) -> int:
    post_id: int = request.path_params["id"]
    if post_id > MAX_ID:
        raise ApiError(404, "post_not_found", f"no post {post_id}")
    return post_id


# --- the event log -----------------------------------------------------------------------


async def list_events(request: Request) -> Response:
    """GET /api/streams/{slug}/events?since=N&limit=N: catch-up for clients that were away."""
    editor = await caller(request, required=False)
    settings = services(request).settings
    slug = _slug(request)
    if eventstream.wants_event_stream(request):
        return await eventstream.event_stream(request, slug, drafts=editor is not None)
    since = int_param(request, "since", default=0, minimum=0) or 0
    limit = int_param(request, "limit", default=settings.events_page_size, minimum=1,
                      maximum=settings.events_page_size) or settings.events_page_size
    async with services(request).db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=editor is not None)
        if since > stream.seq:
            raise ApiError(409, "since_ahead",
                           f"since={since} is past the stream's newest event ({stream.seq}); "
                           "reload the stream", {"seq": stream.seq})
        payloads = await eventlog.events_since(session, stream=stream, since=since, limit=limit)
    # The stored payloads are already JSON: splice them in rather than decode and re-encode.
    last = since + len(payloads)
    seq = max(stream.seq, last)
    head = encode({"stream": slug, "seq": seq, "since": since, "has_more": last < seq})
    return Response(f'{head[:-1]},"events":[{",".join(payloads)}]}}',
                    media_type="application/json")


async def index(request: Request) -> Response:
    """GET /: what this server is and where its API starts."""
    from ... import __version__

    return json_response({
        "name": "Bulletin", "version": __version__,
        "links": {"streams": "/api/streams", "openapi": "/api/openapi.json",
                  "health": "/healthz", "ready": "/readyz"},
    })


async def me(request: Request) -> Response:
    """GET /api/me: the editor the token belongs to."""
    editor = await caller(request, required=True)
    assert editor is not None
    return json_response({"id": editor.id, "username": editor.username,
                          "display_name": editor.display_name, "role": editor.role})


def routes() -> list[BaseRoute]:
    """The API's routes."""
    return [
        Route("/", index, methods=["GET"]),
        Route("/api/me", me, methods=["GET"]),
        Route("/api/streams", list_streams, methods=["GET"]),
        Route("/api/streams", create_stream, methods=["POST"]),
        Route("/api/streams/{slug}", get_stream, methods=["GET"]),
        Route("/api/streams/{slug}", update_stream, methods=["PATCH"]),
        Route("/api/streams/{slug}/posts", list_posts, methods=["GET"]),
        Route("/api/streams/{slug}/posts", create_post, methods=["POST"]),
        Route("/api/streams/{slug}/events", list_events, methods=["GET"]),
        Route("/api/posts/{id:int}", get_post, methods=["GET"]),
        Route("/api/posts/{id:int}", update_post, methods=["PATCH"]),
        Route("/api/posts/{id:int}", delete_post, methods=["DELETE"]),
        Route("/api/posts/{id:int}/revisions", post_revisions, methods=["GET"]),
    ]
