"""The JSON API under /api/: streams, posts and the event log."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.access import Act
from ...core.errors import ApiError
from ...core.protocol import POST_STATUSES, STREAM_STATUSES
from ...store import drafts, eventlog, publishing
from ...store.models import Editor, Event, Stream, utcnow
from ...store.payloads import encode, iso, stream_json, token_access
from .. import eventstream
from ..callers import (
    api_token,
    caller,
    is_contributor,
    new_post_status,
    not_for_contributors,
    permit,
    permit_post,
    writer,
)
from ..idempotency import Created, run_once
from ..latecards import embed_later
from ..preconditions import etag_header, expected_revisions, precondition_failed
from ..responses import json_response
from ..services import services
from ..storylist import prefers_html, story_list
from ..validation import (
    PostCreate,
    PostPatch,
    SendBack,
    StreamCreate,
    StreamPatch,
    attachments,
    check_post_length,
    checked_post_id,
    checked_slug,
    cursor_param,
    future_time,
    int_param,
    parse_body,
    post_filter,
    read_body,
)
from ..writes import commit

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
    summaries = [stream_summary(s) for s in streams]
    if editor is not None:
        _with_readers(request, summaries)
    return json_response({
        "streams": summaries,
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
    editor = await writer(request, Act.CREATE_STREAM)
    svc = services(request)
    raw = await read_body(request, max_bytes=svc.settings.max_body_bytes)
    data = parse_body(raw, StreamCreate)

    async def create(session: AsyncSession) -> Created:
        stream = await eventlog.create_stream(
            session, slug=data.slug, title=data.title, description=data.description,
            status=data.status)
        return 201, stream_summary(stream) | {"pinned": []}, stream.slug, []

    outcome = await run_once(request, editor, raw, create,
                             key=request.headers.get("idempotency-key"))
    return outcome.response()


async def get_stream(request: Request) -> Response:
    """GET /api/streams/{slug}."""
    editor = await caller(request, required=False)
    slug = _slug(request)
    async with services(request).db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=editor is not None)
        pinned = await eventlog.pinned_posts(session, stream=stream)
    summary = stream_summary(stream)
    if editor is not None:
        _with_readers(request, [summary])
    return json_response(summary | {"pinned": [p.to_json() for p in pinned]})


def _with_readers(request: Request, summaries: list[dict[str, Any]]) -> None:
    """Add ``readers`` (open WebSocket and SSE readers, every process) for editors."""
    counts = services(request).live.readers(s["slug"] for s in summaries)
    for summary in summaries:
        summary["readers"] = counts[summary["slug"]]


async def update_stream(request: Request) -> Response:
    """PATCH /api/streams/{slug}."""
    await writer(request, Act.CHANGE_STREAM, stream=_slug(request))
    svc = services(request)
    slug = _slug(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes),
                      StreamPatch)
    if not data.model_fields_set:
        raise ApiError(422, "validation_error", "send at least one of title, description, status")

    async def change(session: AsyncSession) -> tuple[dict[str, Any], str, list[Event]]:
        stream, events = await eventlog.update_stream(
            session, slug=slug, title=data.title, description=data.description,
            status=data.status)
        pinned = await eventlog.pinned_posts(session, stream=stream)
        return stream_summary(stream) | {"pinned": [p.to_json() for p in pinned]}, slug, events

    return json_response(await commit(svc, change))


def _slug(request: Request) -> str:
    return checked_slug(request.path_params["slug"])


# --- posts -------------------------------------------------------------------------------


async def list_posts(request: Request) -> Response:
    """GET /api/streams/{slug}/posts?before=<cursor>&limit=N&tag=X&pinned=true&status=S."""
    editor = await caller(request, required=False)
    settings = services(request).settings
    slug = _slug(request)
    limit = int_param(request, "limit", default=settings.page_size, minimum=1,
                      maximum=settings.max_page_size)
    before = _cursor(request)
    only = post_filter(request)
    status = _status_param(request, editor)
    async with services(request).db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=editor is not None)
        views, next_cursor = await eventlog.list_posts(
            session, stream=stream, before=before, limit=limit or settings.page_size,
            only=only, status=status,
            author_id=editor.id if editor is not None and is_contributor(editor) else None)
    cursor = None if next_cursor is None else str(next_cursor)
    query = "".join(f"{k}={v}&" for k, v in only.query())
    if status != "published":
        query += f"status={status}&"
    return json_response({
        "stream": slug,
        "seq": stream.seq,
        "posts": [_shown(v) for v in views],
        "next_cursor": cursor,
        "links": {"next": None if cursor is None else
                  f"/api/streams/{slug}/posts?{query}before={cursor}&limit={limit}"},
    })


def _cursor(request: Request) -> int | None:
    return cursor_param(request.query_params.get("before"))


def _status_param(request: Request, editor: Editor | None) -> str:
    """``?status=``: published (the default); the posts that wait are for editors (a
    contributor sees their own)."""
    status = request.query_params.get("status") or "published"
    if status not in POST_STATUSES:
        raise ApiError(400, "invalid_parameter",
                       f"status must be one of {', '.join(POST_STATUSES)}",
                       {"parameter": "status"})
    if status != "published" and editor is None:
        raise ApiError(401, "authentication_required",
                       "posts that are not published are for editors: send an API token",
                       headers={"WWW-Authenticate": "Bearer"})
    return status


def _shown(view: eventlog.PostView) -> dict[str, Any]:
    """A post as a read shows it: readers' JSON, with its status while it waits."""
    return view.to_desk_json() if view.waiting else view.to_json()


def _waiting_for(editor: Editor | None) -> bool | int:
    """Which posts that wait ``editor`` may read: every one, their own, or none."""
    if editor is None:
        return False
    assert editor.id is not None
    return editor.id if is_contributor(editor) else True


def _answer(view: eventlog.PostView, events: list[Event]) -> dict[str, Any]:
    """A write's answer: the post with its status, and the seq of its last event (None:
    no event, as for a post that waits)."""
    return view.to_desk_json() | {"seq": events[-1].seq if events else None}


async def create_post(request: Request) -> Response:
    """POST /api/streams/{slug}/posts."""
    editor = await writer(request, Act.POST, stream=_slug(request))
    svc = services(request)
    slug = _slug(request)
    raw = await read_body(request, max_bytes=svc.settings.max_body_bytes)
    data = parse_body(raw, PostCreate)
    if data.pinned:
        permit(request, editor, Act.PIN, stream=slug)
    check_post_length(data.body, svc.settings.max_post_chars)
    status = new_post_status(editor, data.publish_at)
    # Cards wait about 2 s at most; the rest reach the post as post.embedded later.
    book = await svc.cards.gather(data.body)

    async def create(session: AsyncSession) -> Created:
        view, events = await eventlog.create_post(
            session, slug=slug, author=editor, body=data.body, pinned=data.pinned,
            media=attachments(data.media), media_url=svc.media.url, cards=book,
            headline=data.headline, tags=data.tags, contributors=data.contributors,
            status=status, publish_at=data.publish_at)
        # The desk posts a draft with the draft's key: once it is a post (published, or
        # waiting), the draft is done.
        await drafts.discard_posted(session, author=editor,
                                    stream_id=view.post.stream_id, key=key)
        return 201, _answer(view, events), slug, events

    key = request.headers.get("idempotency-key")
    outcome = await run_once(request, editor, raw, create, key=key)
    if not outcome.replayed:
        embed_later(svc, post_id=outcome.body["id"], body=data.body, book=book)
    response = outcome.response()
    if outcome.status == 201:
        response.headers.update(etag_header(outcome.body))
    return response


async def get_post(request: Request) -> Response:
    """GET /api/posts/{id}."""
    editor = await caller(request, required=False)
    async with services(request).db.read() as session:
        view = await eventlog.get_post(session, post_id=_post_id(request),
                                       include_drafts=editor is not None,
                                       waiting=_waiting_for(editor))
    post = _shown(view)
    return json_response(post, headers=etag_header(post))


async def update_post(request: Request) -> Response:
    """PATCH /api/posts/{id}."""
    editor = await writer(request)
    svc = services(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes), PostPatch)
    if data.changes_nothing():
        raise ApiError(422, "validation_error", "send at least one of body, headline, tags, "
                       "contributors, media, pinned, publish_at")
    contributor = is_contributor(editor)
    if "publish_at" in data.model_fields_set:
        not_for_contributors(editor, "schedule")
        if data.publish_at is None:
            raise ApiError(422, "validation_error", "publish_at: give the new time; to "
                           "publish a scheduled post now, POST /api/posts/{id}/approve",
                           {"field": "publish_at"})
        future_time(data.publish_at, utcnow())
    if data.body is not None:
        check_post_length(data.body, svc.settings.max_post_chars)
    post_id = _post_id(request)
    await permit_post(request, editor, post_id, pin=data.pinned is not None,
                      edit=bool(data.model_fields_set - {"pinned"}))
    expected = expected_revisions(request)
    book = None if data.body is None else await svc.cards.gather(data.body)

    async def change(session: AsyncSession) -> tuple[dict[str, Any], str, list[Event]]:
        try:
            view, events = await eventlog.edit_post(
                session, post_id=post_id, editor=editor, body=data.body, pinned=data.pinned,
                media=attachments(data.media), media_url=svc.media.url, cards=book,
                headline=data.headline, tags=data.tags, contributors=data.contributors,
                publish_at=data.publish_at, contributor=contributor,
                expected_revision=expected)
        except eventlog.StaleRevision as stale:
            raise precondition_failed(stale.current) from None
        return _answer(view, events), view.stream_slug, events

    result = await commit(svc, change)
    if book is not None and data.body is not None:
        embed_later(svc, post_id=post_id, body=data.body, book=book)
    return json_response(result, headers=etag_header(result))


async def delete_post(request: Request) -> Response:
    """DELETE /api/posts/{id}."""
    editor = await writer(request)
    svc = services(request)
    post_id = _post_id(request)
    # A contributor may withdraw their own post that waits (the store checks it waits),
    # never delete a published one.
    contributor = is_contributor(editor)
    await permit_post(request, editor, post_id, delete=not contributor, edit=contributor)
    expected = expected_revisions(request)

    async def change(session: AsyncSession) -> tuple[dict[str, Any], str, list[Event]]:
        try:
            view, events = await eventlog.delete_post(session, post_id=post_id, editor=editor,
                                                      contributor=contributor,
                                                      expected_revision=expected)
        except eventlog.StaleRevision as stale:
            raise precondition_failed(stale.current) from None
        return _answer(view, events), view.stream_slug, events

    return json_response(await commit(svc, change))


async def approve_post(request: Request) -> Response:
    """POST /api/posts/{id}/approve: publish a post that waits, now (editors only)."""
    editor = await writer(request)
    not_for_contributors(editor, "approve")
    post_id = _post_id(request)
    await permit_post(request, editor, post_id, edit=True)  # a token's streams

    async def change(session: AsyncSession) -> tuple[dict[str, Any], str, list[Event]]:
        view, events = await publishing.approve(session, post_id=post_id, editor=editor)
        return _answer(view, events), view.stream_slug, events

    return json_response(await commit(services(request), change))


async def send_back_post(request: Request) -> Response:
    """POST /api/posts/{id}/send-back {"note"}: return a submitted post to its
    contributor (editors only)."""
    editor = await writer(request)
    not_for_contributors(editor, "send_back")
    svc = services(request)
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes),
                      SendBack)
    post_id = _post_id(request)
    await permit_post(request, editor, post_id, edit=True)  # a token's streams

    async def change(session: AsyncSession) -> tuple[dict[str, Any], str, list[Event]]:
        view = await publishing.send_back(session, post_id=post_id, editor=editor,
                                          note=data.note)
        return _answer(view, []), view.stream_slug, []

    return json_response(await commit(svc, change))


async def post_revisions(request: Request) -> Response:
    """GET /api/posts/{id}/revisions: a post's earlier texts (editors only)."""
    editor = await caller(request, required=True)
    post_id = _post_id(request)
    async with services(request).db.read() as session:
        view = await eventlog.get_post(session, post_id=post_id, include_drafts=True,
                                       waiting=_waiting_for(editor))
        revisions = await eventlog.post_revisions(session, post_id=post_id)
    return json_response({
        "post": _shown(view),
        "revisions": [
            {"revision": r.revision, "headline": r.headline or None, "tags": r.tags,
             "contributors": r.contributors, "body": r.body, "html": r.html,
             "media": r.media,
             "author_id": r.author_id,
             "replaced_at": iso(r.replaced_at), "replaced_by_id": r.replaced_by_id}
            for r in revisions
        ],
    })


def _post_id(request: Request) -> int:
    return checked_post_id(request.path_params["id"])


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
    """GET /: what this server is and where its API starts; to a browser (Accept ranks
    text/html first) the list of stories instead."""
    from ... import __version__

    if prefers_html(request):
        return await story_list(request, vary="Accept")
    return json_response({
        "name": "Bulletin", "version": __version__,
        "links": {"streams": "/api/streams", "openapi": "/api/openapi.json",
                  "health": "/healthz", "ready": "/readyz", "stories": "/live"},
    }, headers={"Vary": "Accept"})


async def me(request: Request) -> Response:
    """GET /api/me: the editor the token belongs to, and what the token may do."""
    editor = await caller(request, required=True)
    assert editor is not None
    token = api_token(request)
    return json_response({"id": editor.id, "username": editor.username,
                          "display_name": editor.display_name, "role": editor.role,
                          "token": None if token is None else token_access(token)})


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
        Route("/api/posts/{id:int}/approve", approve_post, methods=["POST"]),
        Route("/api/posts/{id:int}/send-back", send_back_post, methods=["POST"]),
    ]
