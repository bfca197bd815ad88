"""Taking a photo down and listing a story's photos: shared by the API
(``routes/media.py``) and the desk's photos page (``routes/photos.py``).

A take-down runs in one write transaction — every upload of the same bytes marked taken
down, every post showing one edited without it (``eventlog.withdraw_media``) — then
publishes the edits, then deletes the files. Files that storage would not delete are
counted in ``files_left``: the photo is already out of every post and its URLs answer 410
from Bulletin, and running the take-down again removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store.eventlog import get_stream, withdraw_media
from ..store.media import MediaUnavailable
from ..store.media.records import get, media_json, of_stream, take_down, variants_of
from ..store.models import Editor, utcnow
from .services import Services


@dataclass(frozen=True, slots=True)
class TakenDown:
    """What a take-down did: the photo as the API shows it now, the posts edited without
    it, and how many of its files left storage and how many would not."""

    media: dict[str, Any]
    posts_edited: list[int]
    files_removed: int
    files_left: int


async def take_down_photo(svc: Services, *, media_id: int, editor: Editor) -> TakenDown:
    """Take the photo ``media_id`` down everywhere (404 if there is none)."""
    assert editor.id is not None
    async with svc.db.write() as session:
        media = await get(session, media_id=media_id)
        rows = await take_down(session, media=media, editor_id=editor.id, at=utcnow())
        events = await withdraw_media(
            session, media_ids={r.id for r in rows if r.id is not None}, editor=editor)
        names = sorted({v.name for row in rows for v in variants_of(row)})
        shown = media_json(media, svc.media.url)
    for slug, stream_events in events.items():
        await svc.live.publish(slug, stream_events)
    left = 0
    for name in names:
        try:
            await svc.media.delete(name)
        except MediaUnavailable:
            left += 1
    edited = sorted(e.post_id for evs in events.values() for e in evs if e.post_id is not None)
    return TakenDown(shown, edited, len(names) - left, left)


async def story_photos(svc: Services, *, slug: str) -> list[dict[str, Any]]:
    """A story's photos, newest first, as the API shows them plus ``posts``: the ids of
    the live posts showing each (404 if there is no such story)."""
    async with svc.db.read() as session:
        stream = await get_stream(session, slug=slug, include_drafts=True)
        found = await of_stream(session, stream=stream)
    return [media_json(media, svc.media.url) | {"posts": posts} for media, posts in found]
