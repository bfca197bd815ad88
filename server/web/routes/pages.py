"""The reader's pages: the live page, a page per post, the embed, and the list of stories.

Every page is complete without JavaScript (the posts, key events, paging and permalinks
are all in the HTML); ``client_js/reader.js`` then follows the stream live from the seq
the page was rendered at.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.cards import frame_origins
from ...core.errors import ApiError
from ...core.protocol import NO_FILTER, TAG_RE, PostFilter
from ...store import eventlog
from ...store.models import MAX_ID
from .. import jsonld
from ..services import services
from ..storylist import story_list
from ..templating import Pages, origin
from ..validation import checked_post_id

# Readers' pages hold nothing personal: a CDN or browser may keep them briefly, and the
# script catches up from the seq in the page.
PAGE_CACHE = "public, max-age=5, stale-while-revalidate=30"


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def not_found(request: Request, what: str) -> Response:
    """The reader's 404 page."""
    return _pages(request).render(request, "not_found.html", {"what": what}, status=404,
                                  frames=(), headers={"Cache-Control": "no-cache"})


async def _stream_page_data(request: Request, slug: str, *, before: int | None,
                            only: PostFilter = NO_FILTER,
                            ) -> dict[str, Any] | None:
    svc = services(request)
    async with svc.db.read() as session:
        try:
            stream = await eventlog.get_stream(session, slug=slug, include_drafts=False)
        except ApiError:
            return None
        # The seq is read before the posts: anything newer than the page is replayed by
        # the script, and events carry full state, so applying one twice is harmless.
        seq = stream.seq
        posts, next_cursor = await eventlog.list_posts(
            session, stream=stream, before=before, limit=svc.settings.page_size, only=only)
        # A page of the key events only has no list of them above its feed; a tag's
        # page lists the tag's.
        pinned = [] if only.pinned else await eventlog.pinned_posts(
            session, stream=stream, only=only)
    base = origin(request)
    page_url = f"{base}/live/{stream.slug}"
    image = jsonld.share_image([*pinned, *posts], base)
    return {
        "frames": _frames(posts),
        "stream": stream, "seq": seq, "posts": posts, "pinned": pinned, "before": before,
        "next_cursor": next_cursor, "page_url": page_url, "origin": base, "only": only,
        "headline": jsonld.post_headline, "page_size": svc.settings.page_size,
        "json_ld": jsonld.with_image(jsonld.live_blog_posting(
            stream, posts, page_url=page_url, post_url=page_url + "#post-{id}"), image),
        "image": image,
        "modified": jsonld.modified(stream, posts),
    }


def _frames(views: list[eventlog.PostView]) -> list[str]:
    """The origins the page's cards may load their players from, and nothing else."""
    return sorted(frame_origins([e for v in views for e in v.post.embeds]))


def _filter(request: Request) -> PostFilter:
    # A page's filter from its query; a malformed one shows every update (a reader's
    # page never refuses a link someone shared).
    tag = request.query_params.get("tag", "")
    pinned = request.query_params.get("pinned", "") in ("true", "1")
    return PostFilter(tag=tag if TAG_RE.match(tag) else None, pinned=pinned)


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return min(int(raw), MAX_ID)
    return None


async def _feed_page(request: Request, template: str, frame_ancestors: str) -> Response:
    data = await _stream_page_data(request, request.path_params["slug"],
                                   before=_before(request), only=_filter(request))
    if data is None:
        return not_found(request, "story")
    return _pages(request).render(request, template, data, frame_ancestors=frame_ancestors,
                                  frames=data["frames"], headers={"Cache-Control": PAGE_CACHE})


async def live_page(request: Request) -> Response:
    """GET /live/{slug}: the live story; ``?before=<post id>`` for older updates."""
    return await _feed_page(request, "reader.html", "'self'")


async def embed_page(request: Request) -> Response:
    """GET /embed/{slug}: the same feed with minimal chrome, for an iframe on any site."""
    return await _feed_page(request, "embed.html", "*")


async def post_page(request: Request) -> Response:
    """GET /live/{slug}/posts/{id}: one update on a page of its own, with share metadata."""
    svc = services(request)
    slug = request.path_params["slug"]
    try:
        post_id = checked_post_id(request.path_params["id"])
    except ApiError:
        return not_found(request, "update")
    async with svc.db.read() as session:
        try:
            view = await eventlog.get_post(session, post_id=post_id, include_drafts=False)
            stream = await eventlog.get_stream(session, slug=slug, include_drafts=False)
        except ApiError:
            return not_found(request, "update")
    if view.stream_slug != stream.slug:
        return not_found(request, "update")
    base = origin(request)
    page_url = f"{base}/live/{stream.slug}"
    url = f"{page_url}/posts/{view.post.id}"
    posting = jsonld.live_blog_posting(stream, [view], page_url=page_url, post_url=url)
    image = jsonld.share_image([view], base)
    frames = _frames([view])
    return _pages(request).render(request, "post.html", {
        "stream": stream, "view": view, "url": url, "page_url": page_url, "frames": frames,
        "headline": jsonld.post_headline(view),
        "summary": jsonld.shorten(jsonld.plain_text(view.post.html),
                                    jsonld.DESCRIPTION_CHARS),
        "json_ld": jsonld.with_image(
            posting["liveBlogUpdate"][0] | {"@context": "https://schema.org"}, image),
        "image": image,
    }, frames=frames, headers={"Cache-Control": PAGE_CACHE})


async def stream_list(request: Request) -> Response:
    """GET /live: the stories readers can follow, live ones apart from ended ones."""
    return await story_list(request)


def routes() -> list[BaseRoute]:
    """The reader's pages (HTML: not part of the API's OpenAPI document)."""
    return [
        Route("/live", stream_list, methods=["GET", "HEAD"],
              include_in_schema=False),
        Route("/live/{slug}", live_page, methods=["GET", "HEAD"],
              include_in_schema=False),
        Route("/live/{slug}/posts/{id:int}", post_page, methods=["GET", "HEAD"],
              include_in_schema=False),
        Route("/embed/{slug}", embed_page, methods=["GET", "HEAD"],
              include_in_schema=False),
    ]
