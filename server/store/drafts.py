"""Editors' drafts: the post each editor is writing in each story, kept on the server so
that another device of theirs finds it. Nobody else sees it.

One draft per (editor, stream). Each save counts up its ``version``; a save may name the
version it was made from (``base``), and one made from an older version than the stored
one is refused as ``Stale`` (last write wins only for saves that name no base). A draft
whose idempotency key has been used for a post was published: it is deleted in the post's
own transaction (``discard_posted``), and a late save of it is refused as ``Posted``, so a
save still on its way cannot bring a published draft back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..core.errors import ApiError
from .media.records import Attachment, file_url, media_json
from .models import Editor, IdempotencyKey, Media, PostDraft, utcnow
from .payloads import iso
from .people import checked_contributors


@dataclass(frozen=True, slots=True)
class DraftContent:
    """What the desk keeps of a post being written."""

    body: str
    pinned: bool
    headline: str
    tags: Sequence[str]
    contributors: Sequence[int]
    media: Sequence[Attachment]
    uploading: Sequence[str]
    key: str


@dataclass(frozen=True, slots=True)
class Stale:
    """A save made from an older version than the stored draft (or from one that is gone):
    nothing was written. ``current`` is the stored draft, None when there is none."""

    current: PostDraft | None


@dataclass(frozen=True, slots=True)
class Posted:
    """A save of a draft whose key has already published a post: nothing was written."""


# The save names no base, and overwrites whatever is stored.
ANY_VERSION: Final = "any"


async def get_draft(session: AsyncSession, *, editor_id: int, stream_id: int) -> PostDraft | None:
    """The editor's draft in the stream, if they have one."""
    return (await session.exec(select(PostDraft).where(
        PostDraft.editor_id == editor_id, PostDraft.stream_id == stream_id)
        .execution_options(populate_existing=True))).first()


async def save_draft(
    session: AsyncSession, *, editor_id: int, stream_id: int, content: DraftContent,
    base: int | Literal["any"] | None = ANY_VERSION,
) -> PostDraft | Stale | Posted:
    """Store the draft as its next version. ``base`` is the version the save was made
    from (None: made with no draft on the server); ``ANY_VERSION`` skips the check.
    422 ``person_not_found`` or ``media_not_found`` for a byline or photo that does not
    exist, as for posts."""
    # One save at a time per editor: two devices saving at once are put in order here,
    # and neither can slip in a first draft beside the other's.
    await session.exec(select(Editor.id).where(Editor.id == editor_id).with_for_update())
    used = (await session.exec(select(IdempotencyKey.id).where(
        IdempotencyKey.editor_id == editor_id, IdempotencyKey.key == content.key))).first()
    if used is not None:
        return Posted()
    contributors = await checked_contributors(session, list(content.contributors))
    await _check_media(session, content.media)
    draft = await get_draft(session, editor_id=editor_id, stream_id=stream_id)
    if base is not ANY_VERSION and base != (None if draft is None else draft.version):
        return Stale(draft)
    if draft is None:
        draft = PostDraft(editor_id=editor_id, stream_id=stream_id, key=content.key,
                          version=0)
    draft.body, draft.pinned, draft.headline = content.body, content.pinned, content.headline
    draft.tags = list(dict.fromkeys(content.tags))
    draft.contributors = contributors
    draft.media = [{"id": a.id, "alt": a.alt, "caption": a.caption, "credit": a.credit}
                   for a in content.media]
    draft.uploading = list(content.uploading)
    draft.key = content.key
    draft.version += 1
    draft.updated_at = utcnow()
    session.add(draft)
    await session.flush()
    return draft


async def delete_draft(session: AsyncSession, *, editor_id: int, stream_id: int) -> bool:
    """Throw the editor's draft in the stream away; whether there was one."""
    result = await session.exec(sa.delete(PostDraft).where(
        col(PostDraft.editor_id) == editor_id, col(PostDraft.stream_id) == stream_id))
    return bool(result.rowcount)


async def discard_posted(session: AsyncSession, *, author: Editor, stream_id: int,
                         key: str | None) -> None:
    """``author`` published a post with ``key``: the draft it came from (the one with that
    key) is done. Runs in the post's transaction."""
    if key is None:
        return
    await session.exec(sa.delete(PostDraft).where(
        col(PostDraft.editor_id) == author.id, col(PostDraft.stream_id) == stream_id,
        col(PostDraft.key) == key))


async def draft_json(session: AsyncSession, draft: PostDraft, *, stream_slug: str,
                     url_for: Callable[[str], str] = file_url) -> dict[str, Any]:
    """The draft as the API shows it: the photos with their files' URLs, as posts show
    theirs. A photo taken down since the save is left out."""
    return {
        "stream": stream_slug, "body": draft.body, "pinned": draft.pinned,
        "headline": draft.headline, "tags": list(draft.tags),
        "contributors": list(draft.contributors),
        "media": await _photos(session, draft.media, url_for),
        "uploading": list(draft.uploading), "key": draft.key, "version": draft.version,
        "updated_at": iso(draft.updated_at),
    }


async def _check_media(session: AsyncSession, media: Sequence[Attachment]) -> None:
    ids = sorted({a.id for a in media})
    if not ids:
        return
    rows = (await session.exec(select(Media).where(col(Media.id).in_(ids)))).all()
    found = {m.id: m for m in rows}
    for media_id in ids:
        row = found.get(media_id)
        if row is None:
            raise ApiError(422, "media_not_found", f"media {media_id} does not exist",
                           {"media": media_id})
        if row.taken_down_at is not None:
            raise ApiError(422, "media_taken_down",
                           f"media {media_id} was taken down and cannot be shown",
                           {"media": media_id})


async def _photos(session: AsyncSession, refs: Sequence[dict[str, Any]],
                  url_for: Callable[[str], str]) -> list[dict[str, Any]]:
    ids = sorted({int(r["id"]) for r in refs})
    rows = {} if not ids else {m.id: m for m in (await session.exec(
        select(Media).where(col(Media.id).in_(ids)))).all()}
    shown = []
    for ref in refs:
        media = rows.get(int(ref["id"]))
        if media is None or media.taken_down_at is not None:
            continue
        data = media_json(media, url_for)
        shown.append({"id": media.id, "alt": ref["alt"], "caption": ref["caption"],
                      "credit": ref["credit"], "width": media.width, "height": media.height,
                      "url": data["url"], "variants": data["variants"]})
    return shown
