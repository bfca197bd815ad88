"""The desk's photos of a story, and taking a photo down.

``GET /editor/streams/{slug}/photos`` lists the photos uploaded for the story and those
its posts show, with the posts showing each; ``/editor/media/{id}/take-down`` asks first
(what will change, and that a CDN must be purged), then takes the photo down with the
same function as ``DELETE /api/media/{id}`` (``web/photos.py``). Plain forms, so that it
works without JavaScript: at two in the morning with a legal order, this must just work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ...core.access import Act
from ...store.eventlog import get_stream, posts_showing
from ...store.media.records import get, media_json, same_file
from ..callers import limit_writes, permit
from ..deskforms import Desk, desk_endpoint, page, redirect, render
from ..photos import story_photos, take_down_photo
from ..services import services
from ..templating import clock
from ..validation import checked_id, checked_slug


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    """A photo as the page shows it: the API's JSON, its times as text and a thumbnail."""
    jpegs = [v for v in item["variants"] if v["content_type"] == "image/jpeg"]
    thumb = next((v for v in jpegs if v["width"] >= 480), jpegs[-1] if jpegs else None)
    return item | {
        "created_text": clock(datetime.fromisoformat(item["created_at"])),
        "down_text": (clock(datetime.fromisoformat(item["taken_down_at"]))
                      if item["taken_down_at"] else ""),
        "thumb": thumb,
    }


@desk_endpoint()
async def photos_page(request: Request, desk: Desk) -> Response:
    """GET /editor/streams/{slug}/photos: the story's photos, newest first."""
    slug = checked_slug(request.path_params["slug"])
    svc = services(request)
    async with svc.db.read() as session:
        stream = await get_stream(session, slug=slug, include_drafts=True)
    photos = [_shown(item) for item in await story_photos(svc, slug=slug)]
    return render(request, desk.signed_in, "editor/photos.html", {
        "section": "streams", "stream": stream, "photos": photos})


async def _photo(request: Request) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    svc = services(request)
    media_id = checked_id(request.path_params["id"], "media")
    async with svc.db.read() as session:
        media = await get(session, media_id=media_id)
        showing = await posts_showing(session, media_ids=await same_file(session, media=media))
    return _shown(media_json(media, svc.media.url)), showing


@desk_endpoint()
async def take_down_page(request: Request, desk: Desk) -> Response:
    """GET /editor/media/{id}/take-down: what a take-down will do; ask before doing it."""
    photo, showing = await _photo(request)
    back = request.query_params.get("stream", "")
    return render(request, desk.signed_in, "editor/photo_take_down.html", {
        "section": "streams", "photo": photo, "showing": showing,
        "back": checked_slug(back) if back else (showing[0][1] if showing else "")})


@desk_endpoint()
async def take_down(request: Request, desk: Desk) -> Response:
    """POST /editor/media/{id}/take-down: take the photo down, back to the story's photos."""
    media_id = checked_id(request.path_params["id"], "media")
    permit(request, desk.editor, Act.TAKE_DOWN)
    limit_writes(request, desk.editor)
    done = await take_down_photo(services(request), media_id=media_id, editor=desk.editor)
    back = desk.form.get("stream", "")
    target = f"/editor/streams/{checked_slug(back)}/photos" if back else "/editor"
    posts = len(done.posts_edited)
    out = (f"removed from {posts} post{'s' if posts != 1 else ''}" if posts
           else "it was in no post")
    if done.files_left:
        return redirect(request, target,
                        f"Photo {media_id} taken down ({out}), but {done.files_left} of its "
                        "files could not be removed from storage. Take it down again to "
                        "retry.", "error")
    return redirect(request, target, f"Photo {media_id} taken down: {out}, "
                                     f"{done.files_removed} files deleted.")


def routes() -> list[BaseRoute]:
    """The desk's photo pages."""
    return [
        page("/editor/streams/{slug}/photos", photos_page, "GET"),
        page("/editor/media/{id:int}/take-down", take_down_page, "GET"),
        page("/editor/media/{id:int}/take-down", take_down, "POST"),
    ]
