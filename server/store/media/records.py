"""The media table: what was uploaded, by whom, and the names of its files."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...core.errors import ApiError, not_found
from ..models import Media, Post, Stream
from ..payloads import iso


@dataclass(frozen=True, slots=True)
class StoredVariant:
    """One file of a photo: its size, type and storage name."""

    width: int
    height: int
    content_type: str
    name: str


def variants_of(media: Media) -> list[StoredVariant]:
    """The photo's files, smallest first."""
    return [StoredVariant(**v) for v in json.loads(media.variants)]


async def create(session: AsyncSession, *, uploaded_by_id: int, digest: str,
                 source_type: str, width: int, height: int,
                 variants: list[StoredVariant], alt: str, caption: str,
                 credit: str, stream_id: int | None = None) -> Media:
    """Add a photo's row (its files are already stored)."""
    media = Media(uploaded_by_id=uploaded_by_id, digest=digest, source_type=source_type,
                  stream_id=stream_id,
                  width=width, height=height, alt=alt, caption=caption, credit=credit,
                  variants=json.dumps([
                      {"width": v.width, "height": v.height, "content_type": v.content_type,
                       "name": v.name} for v in variants]))
    session.add(media)
    await session.flush()
    return media


async def get(session: AsyncSession, *, media_id: int) -> Media:
    """A photo by id; 404 when there is none."""
    media = await session.get(Media, media_id)
    if media is None:
        raise not_found("media", media_id)
    return media


async def digest_in_use(session: AsyncSession, *, digest: str) -> bool:
    """Whether any photo's files are named from ``digest``."""
    found = (await session.exec(select(Media.id).where(col(Media.digest) == digest))).first()
    return found is not None


async def taken_down_digest(session: AsyncSession, *, digest: str) -> Media | None:
    """The take-down of these bytes, if they were taken down: the same file uploaded again
    stays down."""
    return (await session.exec(
        select(Media).where(col(Media.digest) == digest, col(Media.taken_down_at).is_not(None))
        .order_by(col(Media.taken_down_at))
    )).first()


async def taken_down_file(session: AsyncSession, *, name: str) -> bool:
    """Whether the file ``name`` belonged to a photo that was taken down (its name starts
    with the first 32 hex digits of the photo's digest)."""
    prefix = name.split("-", 1)[0].split(".", 1)[0]
    found = (await session.exec(
        select(Media.id).where(col(Media.digest).startswith(prefix, autoescape=True),
                               col(Media.taken_down_at).is_not(None))
    )).first()
    return found is not None


async def same_file(session: AsyncSession, *, media: Media) -> set[int]:
    """The ids of every upload of the photo's bytes (they share its files), its own too."""
    return {i for i in (await session.exec(
        select(Media.id).where(col(Media.digest) == media.digest))).all() if i is not None}


async def take_down(session: AsyncSession, *, media: Media, editor_id: int,
                    at: datetime) -> list[Media]:
    """Mark the photo and every other upload of the same bytes (they share its files) as
    taken down; returns them all, the ones already down included."""
    rows = list((await session.exec(
        select(Media).where(col(Media.digest) == media.digest).order_by(col(Media.id))
    )).all())
    for row in rows:
        if row.taken_down_at is None:
            row.taken_down_at, row.taken_down_by_id = at, editor_id
    await session.flush()
    return rows


async def of_stream(session: AsyncSession, *, stream: Stream) -> list[tuple[Media, list[int]]]:
    """A story's photos, newest first: those uploaded for it and those its posts show,
    each with the ids of the live posts showing it."""
    shown: dict[int, list[int]] = {}
    posts = (await session.exec(
        select(Post.id, Post.media).where(Post.stream_id == stream.id,
                                          col(Post.deleted_at).is_(None))
        .order_by(col(Post.id))
    )).all()
    for post_id, media in posts:
        for item in media:
            users = shown.setdefault(int(item["id"]), [])
            if post_id is not None and post_id not in users:
                users.append(post_id)
    query = select(Media).order_by(col(Media.id).desc())
    if shown:
        query = query.where(sa.or_(col(Media.stream_id) == stream.id,
                                   col(Media.id).in_(sorted(shown))))
    else:
        query = query.where(col(Media.stream_id) == stream.id)
    return [(m, shown.get(m.id or 0, [])) for m in (await session.exec(query)).all()]


def file_url(name: str) -> str:
    """The public URL of a stored file, served by Bulletin under /media/."""
    return f"/media/{name}"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A photo as a post shows it: which one, and the words that go with it there."""

    id: int
    alt: str
    caption: str = ""
    credit: str = ""


async def attachments_json(session: AsyncSession, attachments: list[Attachment],
                           url_for: Callable[[str], str] = file_url) -> list[dict[str, Any]]:
    """The photos of a post as stored with it and sent to readers: id, alt, caption,
    credit, size and every variant's URL. 422 media_not_found for an unknown id."""
    shown: list[dict[str, Any]] = []
    for attachment in attachments:
        media = await session.get(Media, attachment.id)
        if media is None:
            raise ApiError(422, "media_not_found", f"media {attachment.id} does not exist",
                           {"media": attachment.id})
        if media.taken_down_at is not None:
            raise ApiError(422, "media_taken_down",
                           f"media {attachment.id} was taken down and cannot be shown",
                           {"media": attachment.id})
        data = media_json(media, url_for)
        shown.append({
            "id": media.id, "alt": attachment.alt, "caption": attachment.caption,
            "credit": attachment.credit, "width": media.width, "height": media.height,
            "url": data["url"], "variants": data["variants"],
        })
    return shown


async def claim(session: AsyncSession, attachments: list[Attachment], *, stream_id: int) -> None:
    """A photo first shown in a story that was uploaded for none belongs to that story
    from then on: it stays in the story's list once no post shows it (a take-down)."""
    ids = sorted({a.id for a in attachments})
    if ids:
        await session.exec(sa.update(Media).where(col(Media.id).in_(ids),
                                                  col(Media.stream_id).is_(None))
                           .values(stream_id=stream_id))


def media_json(media: Media, url_for: Callable[[str], str]) -> dict[str, Any]:
    """A photo as the API shows it; ``url_for(name)`` gives a file's public URL. A photo
    that was taken down keeps its description for the record, but no URL."""
    if media.taken_down_at is not None:
        return {
            "id": media.id, "url": None, "content_type": None, "width": media.width,
            "height": media.height, "source_type": media.source_type, "alt": media.alt,
            "caption": media.caption, "credit": media.credit,
            "created_at": iso(media.created_at), "variants": [],
            "taken_down_at": iso(media.taken_down_at),
            "taken_down_by_id": media.taken_down_by_id,
        }
    variants = variants_of(media)
    largest = max((v for v in variants if v.content_type == "image/webp"),
                  key=lambda v: v.width, default=variants[-1])
    return {
        "id": media.id, "url": url_for(largest.name), "content_type": largest.content_type,
        "width": media.width, "height": media.height, "source_type": media.source_type,
        "alt": media.alt, "caption": media.caption, "credit": media.credit,
        "created_at": iso(media.created_at), "taken_down_at": None, "taken_down_by_id": None,
        "variants": [{"width": v.width, "height": v.height, "content_type": v.content_type,
                      "url": url_for(v.name)} for v in variants],
    }
