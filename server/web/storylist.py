"""The list of stories readers can follow, live ones apart from ended ones: the page at
``/live``, and at ``/`` for a browser (``prefers_html``)."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from ..store import eventlog
from ..store.models import Stream
from .services import services
from .templating import Pages

# Enough stories for a newsroom's front page of live coverage, of each kind.
STORY_LIST_LIMIT = 50
# Readers' pages hold nothing personal: a CDN or browser may keep them briefly.
LIST_CACHE = "public, max-age=5, stale-while-revalidate=30"


async def story_list(request: Request, *, vary: str | None = None) -> Response:
    """The page: live stories, the newest first, then ended ones, the latest ended first,
    each with when it started, ended and last changed."""
    svc = services(request)
    async with svc.db.read() as session:
        live, _ = await eventlog.list_streams(session, include_drafts=False, status="live",
                                              limit=STORY_LIST_LIMIT)
        ended, _ = await eventlog.list_streams(session, include_drafts=False, status="ended",
                                               limit=STORY_LIST_LIMIT)
    pages: Pages = request.app.state.pages
    headers = {"Cache-Control": LIST_CACHE} | ({"Vary": vary} if vary else {})
    return pages.render(request, "streams.html", {
        "live": sorted(live, key=_started, reverse=True),
        "ended": sorted(ended, key=lambda s: s.ended_at or s.updated_at, reverse=True),
    }, frames=(), headers=headers)


def _started(stream: Stream) -> datetime:
    return stream.started_at or stream.created_at


def prefers_html(request: Request) -> bool:
    """Whether the Accept header ranks text/html above application/json, as a browser's
    navigation does; ``*/*``, ``application/json`` and no header do not."""
    ranges: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        if kind:
            ranges[kind.lower()] = max(ranges.get(kind.lower(), 0.0), quality)
    return _quality(ranges, "text/html") > _quality(ranges, "application/json")


def _quality(ranges: dict[str, float], media_type: str) -> float:
    # The most specific range that matches decides (RFC 9110, 12.5.1).
    for candidate in (media_type, media_type.split("/")[0] + "/*", "*/*"):
        if candidate in ranges:
            return ranges[candidate]
    return 0.0
