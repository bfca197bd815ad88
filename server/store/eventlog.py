"""Queries and writes for streams, posts and the event log.

Every change to a stream appends events in the same transaction as the change. The
stream row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write
transactions begin IMMEDIATE and so are serial already), then ``streams.seq`` is bumped
once per event: two writers can never take the same seq, and a rolled-back write gives
its seq back, so the log has no gaps.

A post's events always carry its current state: every edit, pin or deletion rewrites the
``post`` of that post's earlier events in the same transaction (``protocol.restate``), so
no replay can serve text that was corrected or deleted once the change has committed.
Seq, op and time of each event stay as they were. The old texts live on only in
``post_revisions``, which only editors can read.

A post that waits (a contributor's, for approval; a scheduled one, for its time: see
``publishing.py``) has no events at all: it is written, edited and deleted without one,
and its ``post.created`` is written when it is published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..core import content, protocol
from ..core.cards import Card, CardState
from ..core.errors import ApiError, conflict, not_found
from ..core.protocol import NO_FILTER, PUBLIC_STATUSES, SLUG_RE, WAITING_STATUSES, PostFilter
from .media.records import Attachment, attachments_json, claim, file_url
from .models import (
    Editor,
    Event,
    IdempotencyKey,
    Person,
    Post,
    PostRevision,
    Stream,
    utcnow,
)
from .payloads import encode, event_json, iso, person_json, post_json, stream_json
from .people import checked_contributors, drop_photos, people_by_id
from .waiting import changed as waiting_changed

MAX_PINNED = 50

# (from, to) status changes an editor may make. A story that readers have seen cannot
# go back to draft; an ended one may be reopened.
TRANSITIONS = {("draft", "live"), ("live", "ended"), ("ended", "live")}


@dataclass(frozen=True, slots=True)
class PostView:
    """A post with its author and its contributors, ready to be turned into JSON."""

    post: Post
    author: Editor | None
    stream_slug: str
    # The people of ``post.contributors`` still in the directory, in the post's order.
    contributors: tuple[Person, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The post's public JSON."""
        return post_json(self.post, stream_slug=self.stream_slug, author=self.author,
                         contributors=[person_json(p) for p in self.contributors])

    def to_desk_json(self) -> dict[str, Any]:
        """The post's JSON for the desk and the API's writers: the public JSON with its
        status, when a scheduled post goes out, and an editor's note to its contributor.
        Readers never see these (only published posts reach them)."""
        post = self.post
        return self.to_json() | {"status": post.status, "publish_at": iso(post.publish_at),
                                 "note": post.note or None}

    @property
    def waiting(self) -> bool:
        """Whether the post is not published yet (and so has no events)."""
        return self.post.status != "published"


def _where(only: PostFilter) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions of a filter. Tags are slugs, which hold no quote: a tag quoted
    is found in the JSON list's text only as a whole element."""
    conditions: list[sa.ColumnElement[bool]] = []
    if only.pinned:
        conditions.append(col(Post.pinned).is_(True))
    if only.tag is not None:
        conditions.append(sa.cast(col(Post.tags), sa.Text).contains(f'"{only.tag}"'))
    return conditions


# Newest first by the time each went out: a post approved or scheduled late comes at the
# top, above posts with larger ids written while it waited.
_NEWEST_FIRST = (col(Post.created_at).desc(), col(Post.id).desc())


class StaleRevision(Exception):
    """An edit or deletion made from a revision that is no longer the post's: nothing was
    changed. ``current`` is the post's JSON as it is now, read under the stream's lock."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__(f"the post is at revision {current['revision']}")
        self.current = current


# --- streams -----------------------------------------------------------------------------


async def list_streams(
    session: AsyncSession, *, include_drafts: bool, status: str | None = None,
    before: int | None = None, limit: int = 50,
) -> tuple[Sequence[Stream], int | None]:
    """A page of streams, newest first (drafts only for editors), and the next cursor."""
    query = select(Stream).order_by(col(Stream.id).desc()).limit(limit + 1)
    if not include_drafts:
        query = query.where(col(Stream.status).in_(sorted(PUBLIC_STATUSES)))
    if status is not None:
        query = query.where(col(Stream.status) == status)
    if before is not None:
        query = query.where(col(Stream.id) < before)
    rows = (await session.exec(query)).all()
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit and page else None)


async def get_stream(session: AsyncSession, *, slug: str, include_drafts: bool) -> Stream:
    """The stream with this slug; a draft is not found unless ``include_drafts``."""
    stream = (await session.exec(select(Stream).where(Stream.slug == slug))).first()
    if stream is None or (stream.status not in PUBLIC_STATUSES and not include_drafts):
        raise not_found("stream", slug)
    return stream


async def create_stream(
    session: AsyncSession, *, slug: str, title: str, description: str, status: str,
    at: datetime | None = None,
) -> Stream:
    """Create a stream; a taken slug is a 409. ``at`` backdates it (the demo story)."""
    if not SLUG_RE.match(slug):
        raise ApiError(422, "invalid_slug", "slug must be lowercase letters, digits and dashes")
    if status not in ("draft", "live"):
        raise ApiError(422, "invalid_status", "a new stream is 'draft' or 'live'")
    taken = (await session.exec(select(Stream.id).where(Stream.slug == slug))).first()
    if taken is not None:
        raise conflict("slug_taken", f"a stream with slug {slug!r} already exists")
    now = at or utcnow()
    stream = Stream(
        slug=slug, title=title, description=description, status=status,
        created_at=now, updated_at=now, started_at=now if status == "live" else None,
    )
    session.add(stream)
    try:
        await session.flush()
    except sa.exc.IntegrityError:
        # Another writer took the slug between our check and our insert.
        raise conflict("slug_taken", f"a stream with slug {slug!r} already exists") from None
    return stream


async def update_stream(
    session: AsyncSession,
    *,
    slug: str,
    title: str | None = None,
    description: str | None = None,
    status: str | None = None,
    at: datetime | None = None,
) -> tuple[Stream, list[Event]]:
    """Change a stream's details or status; one ``stream.updated`` or ``stream.ended`` event."""
    stream = await _lock_stream(session, col(Stream.slug) == slug)
    if stream is None:
        raise not_found("stream", slug)
    now = at or utcnow()
    changed = False
    if title is not None and title != stream.title:
        stream.title, changed = title, True
    if description is not None and description != stream.description:
        stream.description, changed = description, True
    op = "stream.updated"
    if status is not None and status != stream.status:
        if (stream.status, status) not in TRANSITIONS:
            raise conflict(
                "invalid_transition",
                f"a {stream.status} stream cannot become {status}",
                {"from": stream.status, "to": status},
            )
        if status == "live":
            stream.started_at = stream.started_at or now
            stream.ended_at = None
        elif status == "ended":
            stream.ended_at = now
            op = "stream.ended"
        stream.status, changed = status, True
    if not changed:
        return stream, []
    stream.updated_at = now
    seq = await _next_seq(session, stream)
    subject = stream_json(stream)
    return stream, [_event(session, stream, seq=seq, op=op, at=now, subject=subject)]


# --- posts -------------------------------------------------------------------------------


async def create_post(
    session: AsyncSession, *, slug: str, author: Editor, body: str, pinned: bool,
    media: list[Attachment] | None = None, media_url: Callable[[str], str] = file_url,
    cards: content.CardBook | None = None, at: datetime | None = None,
    headline: str = "", tags: Sequence[str] = (), contributors: Sequence[int] = (),
    status: str = "published", publish_at: datetime | None = None,
) -> tuple[PostView, list[Event]]:
    """Add a post to a stream that has not ended; one ``post.created`` event. A post with
    photos may have no text. ``at`` backdates it (the demo story). A post that waits
    (``status`` submitted, or scheduled for ``publish_at``) gets no event and no seq."""
    rendered = _render(body, cards, photos=bool(media))
    shown = await attachments_json(session, media or [], media_url)
    people = await checked_contributors(session, list(contributors))
    stream = await _lock_stream(session, col(Stream.slug) == slug)
    if stream is None:
        raise not_found("stream", slug)
    if stream.status == "ended":
        raise conflict("stream_ended", f"stream {slug!r} has ended; reopen it to post")
    now = at or utcnow()
    assert stream.id is not None
    await claim(session, media or [], stream_id=stream.id)
    post = Post(
        stream_id=stream.id, author_id=author.id, body=body, html=rendered.html,
        embeds=rendered.embeds_json(), media=shown, pinned=pinned,
        headline=headline, tags=list(dict.fromkeys(tags)), contributors=people,
        created_at=now, status=status, publish_at=publish_at,
    )
    session.add(post)
    await session.flush()
    view = PostView(post, author, stream.slug, await _people(session, post))
    if view.waiting:
        waiting_changed(session, stream.slug)
        return view, []
    stream.updated_at = now
    seq = await _next_seq(session, stream)
    event = _event(session, stream, seq=seq, op="post.created", at=now,
                   subject=view.to_json(), post=post)
    return view, [event]


async def edit_post(
    session: AsyncSession, *, post_id: int, editor: Editor,
    body: str | None = None, pinned: bool | None = None,
    media: list[Attachment] | None = None, media_url: Callable[[str], str] = file_url,
    cards: content.CardBook | None = None, at: datetime | None = None,
    headline: str | None = None, tags: Sequence[str] | None = None,
    contributors: Sequence[int] | None = None, publish_at: datetime | None = None,
    contributor: bool = False, expected_revision: frozenset[int] | None = None,
) -> tuple[PostView, list[Event]]:
    """Change a post's text, headline, tags, bylines or photos (a new revision, the old
    one kept), its pin, or both; or when a scheduled post goes out (``publish_at``).
    None leaves a field as it is.

    A post that waits changes without an event. A ``contributor`` may change only their
    own posts that wait for approval, and a post sent back to them is submitted again.
    With ``expected_revision``, a post whose revision is not one of them is left alone
    (``StaleRevision``); None changes it whatever its revision.
    """
    post, stream = await _lock_post(session, post_id)
    await _check_revision(session, post, stream, expected_revision)
    if contributor:
        _check_contributors_own(post, editor)
        if post.status == "returned":
            post.status = "submitted"
    if publish_at is not None:
        if post.status != "scheduled":
            raise conflict("not_scheduled", f"post {post_id} is {post.status}, not "
                           "scheduled: only a scheduled post has a time to change",
                           {"status": post.status})
        post.publish_at = publish_at
    people = None if contributors is None else \
        await checked_contributors(session, list(contributors))
    new_tags = None if tags is None else list(dict.fromkeys(tags))
    details = {name: value for name, value in (
        ("headline", headline), ("tags", new_tags), ("contributors", people))
        if value is not None and value != getattr(post, name)}
    shown = None if media is None else await attachments_json(session, media, media_url)
    photos = bool(post.media if shown is None else shown)
    if not photos and not (post.body if body is None else body).strip():
        raise ApiError(422, "empty_post", "a post needs text or a photo: write something, "
                       "or delete the post instead")
    rendered = _render(body, cards, photos=photos) if body is not None else None
    now = at or utcnow()
    ops: list[str] = []
    new_text = rendered if body is not None and body != post.body else None
    new_media = shown if shown is not None and shown != post.media else None
    if new_text is not None or new_media is not None or details:
        assert post.id is not None and stream.id is not None
        await claim(session, media or [], stream_id=stream.id)
        session.add(_revision_of(post, replaced_at=now, replaced_by_id=editor.id))
        if new_text is not None and body is not None:
            post.body, post.html = body, new_text.html
            post.embeds = new_text.embeds_json()
        if new_media is not None:
            post.media = new_media
        for name, value in details.items():
            setattr(post, name, value)
        post.revision += 1
        post.edited_at = now
        post.edited_by_id = editor.id
        ops.append("post.edited")
    if pinned is not None and pinned != post.pinned:
        post.pinned = pinned
        ops.append("post.pinned" if pinned else "post.unpinned")
    view = await _view(session, post, stream.slug)
    if not ops or view.waiting:
        if view.waiting:
            waiting_changed(session, stream.slug)
        await session.flush()
        return view, []
    stream.updated_at = now
    await session.flush()
    subject = view.to_json()
    await _restate_history(session, stream, post, subject)
    events = []
    for op in ops:
        seq = await _next_seq(session, stream)
        events.append(_event(session, stream, seq=seq, op=op, at=now,
                             subject=subject, post=post))
    return view, events


async def delete_post(
    session: AsyncSession, *, post_id: int, editor: Editor, contributor: bool = False,
    expected_revision: frozenset[int] | None = None,
) -> tuple[PostView, list[Event]]:
    """Soft-delete a post; one ``post.deleted`` event, its earlier ones restated to no text.
    A post that waits (cancelled, withdrawn) goes without an event: readers never saw it.
    A ``contributor`` may delete only their own posts that wait for approval.
    ``expected_revision`` as for ``edit_post``."""
    post, stream = await _lock_post(session, post_id)
    await _check_revision(session, post, stream, expected_revision)
    if contributor:
        _check_contributors_own(post, editor)
    now = utcnow()
    post.deleted_at = now
    post.pinned = False
    view = await _view(session, post, stream.slug)
    if view.waiting:
        waiting_changed(session, stream.slug)
        await session.flush()
        return view, []
    stream.updated_at = now
    subject = view.to_json()
    await _restate_history(session, stream, post, subject)
    seq = await _next_seq(session, stream)
    event = _event(session, stream, seq=seq, op="post.deleted", at=now,
                   subject=subject, post=post)
    return view, [event]


async def withdraw_media(
    session: AsyncSession, *, media_ids: set[int], editor: Editor
) -> dict[str, list[Event]]:
    """Take photos out of every post and revision that shows them (a take-down).

    A live post showing one is edited without it (a new revision, ``post.edited``, its
    earlier events restated), so that open pages drop the figure at once and no replay
    brings it back; a post that was only photos, with none left, is deleted
    (``post.deleted``); deleted posts and earlier revisions lose it silently. Returns the
    events by stream slug: one photo may be in several stories.
    """
    if not media_ids:
        return {}
    await drop_photos(session, media_ids=media_ids)

    def without(media: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in media if m.get("id") not in media_ids]

    candidates = (await session.exec(
        select(Post.id, Post.stream_id).where(_may_show(media_ids))
        .order_by(col(Post.stream_id), col(Post.id))
    )).all()
    events: dict[str, list[Event]] = {}
    now = utcnow()
    for post_id, stream_id in candidates:
        stream = await _lock_stream(session, col(Stream.id) == stream_id)
        post = (await session.exec(
            select(Post).where(Post.id == post_id).execution_options(populate_existing=True)
        )).one()
        assert stream is not None and post.id is not None
        for revision in (await session.exec(
                select(PostRevision).where(PostRevision.post_id == post.id))).all():
            if without(revision.media) != revision.media:
                revision.media = without(revision.media)
        kept = without(post.media)
        if kept == post.media:
            continue
        if post.deleted_at is not None or post.status != "published":
            post.media = kept  # readers never see it now: no event to tell them
            continue
        stream.updated_at = now
        if kept or post.body.strip():
            session.add(_revision_of(post, replaced_at=now, replaced_by_id=editor.id,
                                     media=kept))
            post.media = kept
            post.revision += 1
            post.edited_at = now
            post.edited_by_id = editor.id
            op = "post.edited"
        else:  # the photo was the whole post: nothing is left to show
            post.media = kept
            post.deleted_at = now
            post.pinned = False
            op = "post.deleted"
        await session.flush()
        subject = (await _view(session, post, stream.slug)).to_json()
        await _restate_history(session, stream, post, subject)
        seq = await _next_seq(session, stream)
        events.setdefault(stream.slug, []).append(_event(
            session, stream, seq=seq, op=op, at=now, subject=subject, post=post))
    return events


async def posts_showing(
    session: AsyncSession, *, media_ids: set[int]
) -> list[tuple[int, str]]:
    """The live posts showing any of the photos, as (post id, stream slug), by stream."""
    rows = (await session.exec(
        select(Post, Stream.slug).join(Stream, col(Stream.id) == Post.stream_id)
        .where(_may_show(media_ids), col(Post.deleted_at).is_(None))
        .order_by(col(Stream.slug), col(Post.id))
    )).all()
    return [(post.id, slug) for post, slug in rows
            if post.id is not None and any(m.get("id") in media_ids for m in post.media)]


def _may_show(media_ids: set[int]) -> sa.ColumnElement[bool]:
    # A prefilter on the JSON's text (every id's digits appear in it); callers make the
    # exact test on the rows it finds.
    text = sa.cast(col(Post.media), sa.Text)
    return sa.or_(*(text.like(f"%{i}%") for i in sorted(media_ids)))


async def embed_cards(
    session: AsyncSession, *, post_id: int, body: str, book: content.CardBook,
) -> tuple[PostView | None, list[Event]]:
    """Show cards that arrived after the post was published, in place of its pending ones:
    its ``html`` and ``embeds`` change, not its revision nor ``edited_at`` (nobody edited
    it); its earlier events are restated and one ``post.embedded`` event is added.

    Nothing changes when the post was deleted, when its text is no longer ``body`` (that
    edit fetched cards of its own), or when no pending card has arrived.
    """
    try:
        post, stream = await _lock_post(session, post_id)
    except ApiError:
        return None, []
    if post.body != body:
        return None, []
    known: dict[str, Card] = {}
    for data in post.embeds:
        stored = Card.from_json(data)
        if stored is None:
            continue
        arrived = book.cards.get(stored.link.url)
        pending = stored.state is CardState.PENDING
        known[stored.link.url] = arrived if pending and arrived is not None else stored
    rendered = _render(post.body, content.CardBook(book.providers, known),
                       photos=bool(post.media))
    embeds = rendered.embeds_json()
    if embeds == post.embeds and rendered.html == post.html:
        return None, []
    post.html, post.embeds = rendered.html, embeds
    now = utcnow()
    view = await _view(session, post, stream.slug)
    await session.flush()
    if view.waiting:
        return view, []  # its post.created, when it goes out, will carry the cards
    stream.updated_at = now
    subject = view.to_json()
    await _restate_history(session, stream, post, subject)
    seq = await _next_seq(session, stream)
    return view, [_event(session, stream, seq=seq, op="post.embedded", at=now,
                         subject=subject, post=post)]


async def posts_with_pending_cards(
    session: AsyncSession, *, since: datetime
) -> list[tuple[int, str]]:
    """The live posts since ``since`` with a card still pending, as (id, body)."""
    # A prefilter on the JSON's text, then the exact test on each stored card.
    rows = (await session.exec(
        select(Post.id, Post.body, Post.embeds).where(
            col(Post.created_at) >= since, col(Post.deleted_at).is_(None),
            sa.cast(col(Post.embeds), sa.Text).like("%pending%"))
        .order_by(col(Post.id))
    )).all()
    found = []
    for post_id, body, embeds in rows:
        stored = (Card.from_json(e) for e in embeds)
        if post_id is not None and any(c is not None and c.state is CardState.PENDING
                                       for c in stored):
            found.append((post_id, body))
    return found


async def get_post(session: AsyncSession, *, post_id: int, include_drafts: bool,
                   waiting: bool | int = False) -> PostView:
    """One post that is not deleted, in a stream the caller may see. A post that waits is
    found only with ``waiting``: True for every one, an editor id for theirs only."""
    row = (await session.exec(
        select(Post, Stream).join(Stream, col(Stream.id) == Post.stream_id)
        .where(Post.id == post_id, col(Post.deleted_at).is_(None))
    )).first()
    if row is None or (row[1].status not in PUBLIC_STATUSES and not include_drafts) or \
            not _may_see(row[0], waiting):
        raise not_found("post", post_id)
    post, stream = row
    return await _view(session, post, stream.slug)


async def list_posts(
    session: AsyncSession, *, stream: Stream, before: int | None, limit: int,
    only: PostFilter = NO_FILTER, status: str = "published", author_id: int | None = None,
) -> tuple[list[PostView], int | None]:
    """A page of live posts (those ``only`` lets through), newest first, and the cursor of
    the next page (or None). ``status`` lists the posts that wait instead (``author_id``:
    one editor's only)."""
    query = (
        select(Post, Editor).outerjoin(Editor, col(Editor.id) == Post.author_id)
        .where(Post.stream_id == stream.id, col(Post.deleted_at).is_(None),
               col(Post.status) == status, *_where(only))
        .order_by(*_NEWEST_FIRST).limit(limit + 1)
    )
    if author_id is not None:
        query = query.where(Post.author_id == author_id)
    if before is not None:
        query = query.where(await _after_cursor(session, before))
    rows = (await session.exec(query)).all()
    views = await _views(session, rows[:limit], stream.slug)
    next_cursor = views[-1].post.id if len(rows) > limit and views else None
    return views, next_cursor


async def pinned_posts(session: AsyncSession, *, stream: Stream,
                       only: PostFilter = NO_FILTER) -> list[PostView]:
    """The stream's key events (those of ``only``), newest first."""
    rows = (await session.exec(
        select(Post, Editor).outerjoin(Editor, col(Editor.id) == Post.author_id)
        .where(Post.stream_id == stream.id, col(Post.pinned).is_(True),
               col(Post.deleted_at).is_(None), col(Post.status) == "published",
               *_where(only))
        .order_by(*_NEWEST_FIRST).limit(MAX_PINNED)
    )).all()
    return await _views(session, rows, stream.slug)


async def _after_cursor(session: AsyncSession, before: int) -> sa.ColumnElement[bool]:
    """The posts that come after post ``before`` newest first (by time, then id)."""
    at = (await session.exec(select(Post.created_at).where(Post.id == before))).first()
    if at is None:
        return col(Post.id) < before
    return sa.or_(col(Post.created_at) < at,
                  sa.and_(col(Post.created_at) == at, col(Post.id) < before))


def _may_see(post: Post, waiting: bool | int) -> bool:
    if post.status == "published" or waiting is True:
        return True
    return waiting is not False and post.author_id == waiting


def _check_contributors_own(post: Post, editor: Editor) -> None:
    """403 unless ``post`` is ``editor``'s own and waits for approval."""
    if post.author_id != editor.id:
        raise ApiError(403, "not_your_post",
                       "a contributor may change only their own posts; an editor can "
                       "change this one", {"post": post.id})
    if post.status not in WAITING_STATUSES or post.status == "scheduled":
        raise ApiError(403, "already_published",
                       f"post {post.id} is {post.status}: a contributor may change a post "
                       "only while it waits for approval; ask an editor",
                       {"post": post.id, "status": post.status})


async def post_revisions(session: AsyncSession, *, post_id: int) -> Sequence[PostRevision]:
    """A post's earlier texts, oldest first."""
    return (await session.exec(
        select(PostRevision).where(PostRevision.post_id == post_id)
        .order_by(col(PostRevision.revision))
    )).all()


# --- the event log -----------------------------------------------------------------------


async def events_since(
    session: AsyncSession, *, stream: Stream, since: int, limit: int
) -> list[str]:
    """Encoded events with seq > since, in seq order, at most ``limit`` of them."""
    rows = await session.exec(
        select(Event.payload).where(Event.stream_id == stream.id, col(Event.seq) > since)
        .order_by(col(Event.seq)).limit(limit)
    )
    return list(rows.all())


async def stream_head(
    session: AsyncSession, *, slug: str, window: int
) -> tuple[Stream, list[str]] | None:
    """A stream with its newest ``window`` encoded events in seq order; None if unknown."""
    stream = (await session.exec(select(Stream).where(Stream.slug == slug))).first()
    if stream is None:
        return None
    rows = await session.exec(
        select(Event.payload).where(Event.stream_id == stream.id,
                                    col(Event.seq) > stream.seq - window)
        .order_by(col(Event.seq))
    )
    return stream, list(rows.all())


async def events_after(
    session: AsyncSession, *, slug: str, since: int, limit: int
) -> list[str]:
    """Encoded events of the stream ``slug`` with seq > since, in seq order."""
    rows = await session.exec(
        select(Event.payload).join(Stream, col(Stream.id) == col(Event.stream_id))
        .where(Stream.slug == slug, col(Event.seq) > since)
        .order_by(col(Event.seq)).limit(limit)
    )
    return list(rows.all())


async def _next_seq(session: AsyncSession, stream: Stream) -> int:
    result = await session.exec(
        sa.update(Stream).where(col(Stream.id) == stream.id)
        .values(seq=col(Stream.seq) + 1).returning(col(Stream.seq))
        .execution_options(synchronize_session=False)
    )
    seq: int = result.scalar_one()
    stream.seq = seq
    return seq


def _event(
    session: AsyncSession,
    stream: Stream, *, seq: int, op: str, at: datetime, subject: dict[str, Any],
    post: Post | None = None,
) -> Event:
    payload = encode(event_json(stream_slug=stream.slug, seq=seq, op=op, at=at, subject=subject))
    assert stream.id is not None
    event = Event(stream_id=stream.id, seq=seq, op=op, post_id=post.id if post else None,
                  payload=payload, created_at=at)
    session.add(event)
    return event


async def _restate_history(
    session: AsyncSession, stream: Stream, post: Post, subject: dict[str, Any]
) -> None:
    """Make the post's events so far carry ``subject``, its state after this change."""
    # Called with the stream locked and before this change's own events are added, so no
    # other writer can add to the post's history meanwhile. stream_id leads the unique
    # (stream_id, seq) index: the scan covers one stream's events, not the whole log.
    rows = (await session.exec(
        select(Event.id, Event.payload)
        .where(Event.stream_id == stream.id, Event.post_id == post.id)
    )).all()
    changed = [{"id": event_id, "payload": restated} for event_id, payload in rows
               if (restated := protocol.restate(payload, subject)) != payload]
    if changed:
        await session.exec(sa.update(Event), params=changed)


async def _lock_stream(session: AsyncSession, where: sa.ColumnElement[bool]) -> Stream | None:
    return (await session.exec(
        select(Stream).where(where).with_for_update()
        .execution_options(populate_existing=True)
    )).first()


async def _lock_post(session: AsyncSession, post_id: int) -> tuple[Post, Stream]:
    # Lock the stream before reading the post, so that two concurrent edits of one post
    # see each other's result instead of both building revision N+1 from revision N.
    stream_id = (await session.exec(select(Post.stream_id).where(Post.id == post_id))).first()
    stream = None if stream_id is None else await _lock_stream(session, col(Stream.id) == stream_id)
    post = (await session.exec(
        select(Post).where(Post.id == post_id).execution_options(populate_existing=True)
    )).first()
    if post is None or stream is None or post.deleted_at is not None:
        raise not_found("post", post_id)
    return post, stream


async def _check_revision(session: AsyncSession, post: Post, stream: Stream,
                          expected: frozenset[int] | None) -> None:
    # Checked with the stream locked: no other write can slip in between this and the change.
    if expected is not None and post.revision not in expected:
        raise StaleRevision((await _view(session, post, stream.slug)).to_json())


async def _author(session: AsyncSession, post: Post) -> Editor | None:
    return None if post.author_id is None else await session.get(Editor, post.author_id)


async def _people(session: AsyncSession, post: Post) -> tuple[Person, ...]:
    found = await people_by_id(session, post.contributors)
    return tuple(found[i] for i in post.contributors if i in found)


async def _view(session: AsyncSession, post: Post, slug: str) -> PostView:
    return PostView(post, await _author(session, post), slug, await _people(session, post))


async def _views(session: AsyncSession, rows: Sequence[tuple[Post, Editor | None]],
                 slug: str) -> list[PostView]:
    # One query for the bylines of the whole page.
    found = await people_by_id(session, (i for post, _a in rows for i in post.contributors))
    return [PostView(post, author, slug,
                     tuple(found[i] for i in post.contributors if i in found))
            for post, author in rows]


def _revision_of(post: Post, *, replaced_at: datetime, replaced_by_id: int | None,
                 media: list[dict[str, Any]] | None = None) -> PostRevision:
    """The post as it is now, kept as the revision a change replaces."""
    assert post.id is not None
    return PostRevision(
        post_id=post.id, revision=post.revision, body=post.body, html=post.html,
        author_id=post.edited_by_id or post.author_id,
        media=list(post.media if media is None else media),
        headline=post.headline, tags=list(post.tags), contributors=list(post.contributors),
        replaced_at=replaced_at, replaced_by_id=replaced_by_id,
    )


def _render(body: str, cards: content.CardBook | None = None, *,
            photos: bool = False) -> content.Rendered:
    """The post's text for readers; a post with photos may have none (its html is then
    empty), any other is 422 ``empty_post``."""
    try:
        return content.render(body, cards)
    except content.ContentError as exc:
        if photos:
            return content.Rendered("", (), exc.notices)
        raise ApiError(422, "empty_post",
                       f"{exc}: write something, or attach a photo") from None


# --- idempotency -------------------------------------------------------------------------


async def find_idempotent(
    session: AsyncSession, *, editor_id: int, key: str, ttl: timedelta
) -> IdempotencyKey | None:
    """The stored response for this editor's key, if it has not expired."""
    row = (await session.exec(
        select(IdempotencyKey).where(IdempotencyKey.editor_id == editor_id,
                                     IdempotencyKey.key == key)
    )).first()
    if row is None or row.created_at < utcnow() - ttl:
        return None
    return row


async def save_idempotent(
    session: AsyncSession, *, editor_id: int, key: str, fingerprint: str,
    status_code: int, response: str, ttl: timedelta,
) -> None:
    """Record a response under the key, in the same transaction as the write it answers."""
    now = utcnow()
    # Expired keys may be reused: clear this editor's stale ones as we go.
    await session.exec(
        sa.delete(IdempotencyKey).where(col(IdempotencyKey.editor_id) == editor_id,
                                        col(IdempotencyKey.created_at) < now - ttl)
    )
    session.add(IdempotencyKey(editor_id=editor_id, key=key, fingerprint=fingerprint,
                               status_code=status_code, response=response, created_at=now))
    await session.flush()
