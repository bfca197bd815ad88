"""Each editor's own draft of a story under /api/streams/{slug}/draft.

The desk saves the post being written here as well as in the browser, so that the editor
finds it on another device. Only the editor who saved it sees it: the draft is looked up
by the caller, so another editor's token or session finds nothing (404). A save names the
version it was made from (``base``); one made from an older version is a 412 with the
stored draft, and changes nothing (docs/api.md: "Drafts").
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.errors import ApiError
from ...store import drafts, eventlog
from ...store.models import Editor
from ..callers import caller, writer
from ..responses import json_response
from ..services import services
from ..validation import DraftSave, check_post_length, checked_slug, parse_body, read_body


async def get_draft(request: Request) -> Response:
    """GET /api/streams/{slug}/draft: 200 with the caller's draft, or 404 draft_not_found."""
    editor = await caller(request, required=True)
    svc = services(request)
    slug = checked_slug(request.path_params["slug"])
    async with svc.db.read() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=True)
        assert stream.id is not None
        draft = await drafts.get_draft(session, editor_id=_id(editor), stream_id=stream.id)
        if draft is None:
            raise _no_draft(slug)
        data = await drafts.draft_json(session, draft, stream_slug=slug, url_for=svc.media.url)
    return json_response(data)


async def put_draft(request: Request) -> Response:
    """PUT /api/streams/{slug}/draft: save the caller's draft as its next version."""
    editor = await writer(request)
    svc = services(request)
    slug = checked_slug(request.path_params["slug"])
    data = parse_body(await read_body(request, max_bytes=svc.settings.max_body_bytes),
                      DraftSave)
    check_post_length(data.body, svc.settings.max_post_chars)
    content = drafts.DraftContent(
        body=data.body, pinned=data.pinned, headline=data.headline, tags=data.tags,
        contributors=data.contributors, media=[p.attachment() for p in data.media],
        uploading=data.uploading, key=data.key)
    base: int | Literal["any"] | None = (
        data.base if "base" in data.model_fields_set else drafts.ANY_VERSION)
    # Raising inside the transaction rolls it back: a refused save writes nothing.
    async with svc.db.write() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=True)
        assert stream.id is not None
        saved = await drafts.save_draft(session, editor_id=_id(editor), stream_id=stream.id,
                                        content=content, base=base)
        if isinstance(saved, drafts.Posted):
            raise ApiError(409, "draft_posted",
                           "this draft was already published (a post was made with its key); "
                           "start a new draft with a new key")
        if isinstance(saved, drafts.Stale):
            current = None if saved.current is None else await drafts.draft_json(
                session, saved.current, stream_slug=slug, url_for=svc.media.url)
            raise ApiError(412, "draft_changed",
                           "the draft was saved from another device since version "
                           f"{data.base}; nothing was changed" if current is not None else
                           "the draft was deleted on another device; nothing was changed",
                           {"draft": current})
        result = await drafts.draft_json(session, saved, stream_slug=slug,
                                         url_for=svc.media.url)
    return json_response(result)


async def delete_draft(request: Request) -> Response:
    """DELETE /api/streams/{slug}/draft: 204, whether or not there was one."""
    editor = await writer(request)
    slug = checked_slug(request.path_params["slug"])
    async with services(request).db.write() as session:
        stream = await eventlog.get_stream(session, slug=slug, include_drafts=True)
        assert stream.id is not None
        await drafts.delete_draft(session, editor_id=_id(editor), stream_id=stream.id)
    return Response(status_code=204)


def _id(editor: Editor | None) -> int:
    assert editor is not None and editor.id is not None
    return editor.id


def _no_draft(slug: str) -> ApiError:
    return ApiError(404, "draft_not_found", f"you have no draft in stream {slug!r}")


def routes() -> list[BaseRoute]:
    """The drafts' routes."""
    return [
        Route("/api/streams/{slug}/draft", get_draft, methods=["GET"]),
        Route("/api/streams/{slug}/draft", put_draft, methods=["PUT"]),
        Route("/api/streams/{slug}/draft", delete_draft, methods=["DELETE"]),
    ]
