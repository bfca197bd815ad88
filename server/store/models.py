"""SQLModel tables: streams, posts, revisions, the event log, editors, tokens, sessions,
media, people and editors' drafts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ..core.access import ROLES, SCOPES
from ..core.protocol import EVENT_OPS, POST_STATUSES, STREAM_STATUSES


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC, on SQLite and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no time zone type: keep naive UTC so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    column: sa.Column[datetime] = sa.Column(UTCDateTime(), nullable=nullable, index=index)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


# Stable constraint names, so that migrations can refer to them on every database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EDITOR_ROLES = ROLES
# Ids are 32-bit integers in the database; a larger one cannot exist.
MAX_ID = 2**31 - 1


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Editor(SQLModel, table=True):
    """A person who may write: signs in with a password or uses API tokens."""

    __tablename__ = "editors"
    __table_args__ = (sa.CheckConstraint(_one_of("role", EDITOR_ROLES), name="role"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=100)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(default="editor", max_length=16)
    disabled: bool = Field(default=False)
    created_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """An editor's API token; only its SHA-256 hash is stored.

    ``scope`` and ``streams`` narrow what the editor's role allows (``core/access.py``);
    ``streams`` is a list of slugs, or None for every stream. After ``expires_at`` (None:
    never) the token is refused as expired.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (sa.CheckConstraint(_one_of("scope", SCOPES), name="scope"),)

    id: int | None = Field(default=None, primary_key=True)
    editor_id: int = Field(foreign_key="editors.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    # The first characters of the token, so that people can tell their tokens apart.
    prefix: str = Field(max_length=16)
    scope: str = Field(default="write", sa_column=sa.Column(
        sa.String(length=16), nullable=False, server_default="write"))
    streams: list[str] | None = Field(default=None, sa_column=sa.Column(
        sa.JSON(none_as_null=True), nullable=True))
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class Stream(SQLModel, table=True):
    """A live story. ``seq`` is the seq of its newest event (0 before the first)."""

    __tablename__ = "streams"
    __table_args__ = (sa.CheckConstraint(_one_of("status", STREAM_STATUSES), name="status"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(default="draft", max_length=16)
    seq: int = Field(default=0)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    ended_at: datetime | None = _ts(nullable=True)


class Post(SQLModel, table=True):
    """One update in a stream. Deleting sets ``deleted_at``; the row stays.

    Only a ``published`` post is seen by readers or has events; ``created_at`` is when it
    was published (readers see the time it went out), ``publish_at`` when a scheduled
    one goes out, ``note`` what an editor said when sending a contributor's post back.
    """

    __tablename__ = "posts"
    __table_args__ = (
        sa.Index("ix_posts_stream_id_id", "stream_id", "id"),
        # Lists are newest first by the time each post went out (eventlog._NEWEST_FIRST).
        sa.Index("ix_posts_stream_id_created_at_id", "stream_id", "created_at", "id"),
        # The scheduler's question, asked every half second by every process.
        sa.Index("ix_posts_status_publish_at", "status", "publish_at"),
        sa.CheckConstraint(_one_of("status", POST_STATUSES), name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stream_id: int = Field(foreign_key="streams.id")
    author_id: int | None = Field(default=None, foreign_key="editors.id")
    body: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    html: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    # The post's cards (core/cards.py: Card.to_json), or the embeds of a post from before.
    embeds: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    # The photos shown with the post, in order, as their public JSON (see media/records.py).
    media: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    pinned: bool = Field(default=False)
    # An optional headline (key events, the post's page, share cards); "" for none.
    headline: str = Field(default="", max_length=120)
    # Short slugs (protocol.TAG_RE), in the editor's order.
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    # The bylines: ids of people in the directory (``Person``), in order.
    contributors: list[int] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    revision: int = Field(default=1)
    created_at: datetime = _ts()
    edited_at: datetime | None = _ts(nullable=True)
    edited_by_id: int | None = Field(default=None, foreign_key="editors.id")
    deleted_at: datetime | None = _ts(nullable=True)
    status: str = Field(default="published", max_length=16)
    publish_at: datetime | None = _ts(nullable=True)
    note: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))


class PostRevision(SQLModel, table=True):
    """The text a post had before an edit: corrections are kept, not overwritten."""

    __tablename__ = "post_revisions"
    __table_args__ = (sa.UniqueConstraint("post_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id")
    revision: int
    body: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    html: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    # Who wrote this revision and when it was replaced, and by whom.
    author_id: int | None = Field(default=None, foreign_key="editors.id")
    replaced_at: datetime = _ts()
    replaced_by_id: int | None = Field(default=None, foreign_key="editors.id")
    # The photos the post showed in this revision (as Post.media), less any taken down.
    media: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    headline: str = Field(default="", max_length=120)
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    contributors: list[int] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))


class Person(SQLModel, table=True):
    """Someone a post can be by: the bylines' directory, apart from the desk's accounts
    (a desk editor may post on a field reporter's behalf)."""

    __tablename__ = "people"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    # What readers see under the name: "Reporter in Caracas".
    description: str = Field(default="", max_length=200)
    # The photo's JSON as posts store theirs (media/records.py), or None.
    photo: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Event(SQLModel, table=True):
    """One change to a stream, numbered 1, 2, 3... per stream with no gaps.

    ``payload`` is the event's wire JSON, encoded once so that a replay sends ready
    bytes. When a post is edited, pinned or deleted, the payloads of its earlier events
    are restated with its current state in the same transaction (``protocol.restate``):
    a replay never brings back text that was corrected or deleted.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("stream_id", "seq"),
        sa.CheckConstraint(_one_of("op", EVENT_OPS), name="op"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stream_id: int = Field(foreign_key="streams.id")
    seq: int
    op: str = Field(max_length=32)
    post_id: int | None = Field(default=None, foreign_key="posts.id")
    payload: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = _ts()


class IdempotencyKey(SQLModel, table=True):
    """The first response to a write sent with an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("editor_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    editor_id: int = Field(foreign_key="editors.id")
    key: str = Field(max_length=200)
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint: str = Field(max_length=64)
    status_code: int
    response: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = _ts(index=True)


class EditorSession(SQLModel, table=True):
    """A signed-in browser. Only the SHA-256 of the cookie's token is stored.

    ``expires_at`` is the absolute end; the idle limit is measured from ``last_seen_at``.
    The user agent and address are shown to admins, never used for decisions.
    """

    __tablename__ = "editor_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    editor_id: int = Field(foreign_key="editors.id", index=True)
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)
    user_agent: str = Field(default="", max_length=200)
    ip: str = Field(default="", max_length=64)


class Media(SQLModel, table=True):
    """An uploaded photo: its processed variants in media storage, and what editors said
    about it. The files are named by their content, so a URL never changes meaning."""

    __tablename__ = "media"

    id: int | None = Field(default=None, primary_key=True)
    uploaded_by_id: int = Field(foreign_key="editors.id", index=True)
    # The SHA-256 of the uploaded bytes: the same file uploaded again is the same media.
    digest: str = Field(max_length=64, index=True)
    # What the bytes were (image/jpeg, image/heic...); every variant is WebP or JPEG.
    source_type: str = Field(max_length=32)
    width: int
    height: int
    # The variants as JSON: [{"width", "height", "content_type", "name"}...].
    variants: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    alt: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    caption: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    credit: str = Field(default="", max_length=200)
    created_at: datetime = _ts()
    # The story it was uploaded for (the upload's ``stream`` field), if one was named.
    stream_id: int | None = Field(default=None, foreign_key="streams.id", index=True)
    # A take-down (a legal order, a victim's face): the files are gone, the URLs answer
    # 410, and no post shows it any more. The row stays for the audit trail.
    taken_down_at: datetime | None = _ts(nullable=True)
    taken_down_by_id: int | None = Field(default=None, foreign_key="editors.id")



class PostDraft(SQLModel, table=True):
    """An editor's unsent post in one story, as the desk last saved it: one per (editor,
    stream), seen by that editor only, so that another device of theirs finds it.

    ``media`` holds the photos' references (``{"id", "alt", "caption", "credit"}``), never
    their files; ``uploading`` the names of photos that were still uploading on the device
    that saved it (they exist only there). ``version`` counts the saves: a save that names
    an older one is refused (``store/drafts.py``)."""

    __tablename__ = "drafts"
    __table_args__ = (sa.UniqueConstraint("editor_id", "stream_id"),)

    id: int | None = Field(default=None, primary_key=True)
    editor_id: int = Field(foreign_key="editors.id")
    stream_id: int = Field(foreign_key="streams.id", index=True)
    body: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    pinned: bool = Field(default=False)
    headline: str = Field(default="", max_length=120)
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    contributors: list[int] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    media: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    uploading: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    # The Idempotency-Key the desk posts this draft with: publishing it deletes the draft.
    key: str = Field(max_length=200)
    version: int = Field(default=1)
    updated_at: datetime = _ts()
