"""Posts that wait, and their publishing: a contributor's post approved or sent back, a
scheduled post going out at its time.

A post that waits has no events (``eventlog``); publishing it writes its one
``post.created``, in the same transaction as the change of status, under the stream's
lock, so readers' seq moves exactly then. Its ``created_at`` becomes the time it went
out: readers see when they could first read it, and lists newest first put it on top.

Every server process runs the scheduler (``web/scheduler.py``), which asks ``due_streams``
and then ``publish_due`` for each stream. A scheduled post goes out exactly once however
many processes ask at once: ``publish_due`` locks the stream first (the order every
writer takes locks in, so it cannot deadlock against them), then the due posts
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and moves each with a conditional
``UPDATE ... WHERE status = 'scheduled'`` whose row count says whether this transaction
published it. On SQLite the write transaction is IMMEDIATE: one writer at a time,
across processes too; the conditional update keeps it exactly once all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..core.errors import conflict
from ..core.protocol import check_post_transition
from .eventlog import PostView, _event, _lock_post, _lock_stream, _next_seq, _view
from .models import Editor, Event, Post, Stream, utcnow
from .waiting import changed as waiting_changed

# How many due posts of one stream one transaction publishes; the rest go on the next round.
DUE_BATCH = 100


async def approve(
    session: AsyncSession, *, post_id: int, editor: Editor, at: datetime | None = None,
) -> tuple[PostView, list[Event]]:
    """Publish a post that waits, now: a contributor's (approved) or a scheduled one
    (published early). One ``post.created``; a published post is a 409."""
    post, stream = await _lock_post(session, post_id)
    if post.status == "published":
        raise conflict("already_published", f"post {post_id} is published already",
                       {"status": post.status})
    return await _publish(session, post, stream, at or utcnow())


async def send_back(
    session: AsyncSession, *, post_id: int, editor: Editor, note: str,
) -> PostView:
    """Return a contributor's submitted post to them with a note; no event (readers never
    saw it). They may edit it, which submits it again."""
    post, stream = await _lock_post(session, post_id)
    _transition(post, "returned")
    post.status, post.note = "returned", note
    waiting_changed(session, stream.slug)
    await session.flush()
    return await _view(session, post, stream.slug)


async def due_streams(session: AsyncSession, *, now: datetime) -> list[int]:
    """The ids of the streams with a scheduled post due at ``now``. A story that has
    ended publishes nothing: its scheduled posts wait until it is reopened."""
    rows = await session.exec(
        select(Post.stream_id).join(Stream, col(Stream.id) == Post.stream_id)
        .where(col(Post.status) == "scheduled", col(Post.publish_at) <= now,
               col(Post.deleted_at).is_(None), col(Stream.status) != "ended")
        .distinct())
    return sorted(rows.all())


async def publish_due(
    session: AsyncSession, *, stream_id: int, now: datetime,
) -> tuple[str, list[Event]]:
    """Publish the stream's scheduled posts due at ``now``, in their order, and return
    the stream's slug and the events written (none when another process got there
    first)."""
    stream = await _lock_stream(session, col(Stream.id) == stream_id)
    if stream is None or stream.status == "ended":
        return "", []
    due: Sequence[Post] = (await session.exec(
        select(Post).where(Post.stream_id == stream_id, col(Post.status) == "scheduled",
                           col(Post.publish_at) <= now, col(Post.deleted_at).is_(None))
        .order_by(col(Post.publish_at), col(Post.id)).limit(DUE_BATCH)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )).all()
    events: list[Event] = []
    for post in due:
        # The claim: only the transaction whose update finds it still scheduled publishes it.
        claimed = await session.exec(
            sa.update(Post).where(col(Post.id) == post.id, col(Post.status) == "scheduled")
            .values(status="published").execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            continue
        events.extend((await _publish(session, post, stream, utcnow(), claimed=True))[1])
    return stream.slug, events


def _transition(post: Post, new: str) -> None:
    try:
        check_post_transition(post.status, new)
    except ValueError as exc:
        raise conflict(f"post_{post.status}", f"post {post.id}: {exc}",
                       {"status": post.status}) from None


async def _publish(session: AsyncSession, post: Post, stream: Stream, now: datetime, *,
                   claimed: bool = False) -> tuple[PostView, list[Event]]:
    """Make ``post`` published at ``now`` with its ``post.created`` event (the stream is
    locked). ``claimed``: its row says published already (``publish_due``)."""
    if not claimed:
        _transition(post, "published")
    if stream.status == "ended":
        raise conflict("stream_ended", f"stream {stream.slug!r} has ended; reopen it to "
                       "publish this post")
    # Readers meet it as a new post: what happened while it waited is for editors (its
    # revisions), not an "edited" mark.
    post.status, post.created_at, post.edited_at = "published", now, None
    post.publish_at, post.note = None, ""
    stream.updated_at = now
    waiting_changed(session, stream.slug)
    await session.flush()
    view = await _view(session, post, stream.slug)
    seq = await _next_seq(session, stream)
    return view, [_event(session, stream, seq=seq, op="post.created", at=now,
                         subject=view.to_json(), post=post)]

