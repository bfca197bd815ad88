"""Editors, their passwords and their API tokens."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..core import access
from ..core.errors import ApiError, conflict, not_found
from . import auth, sessions
from .models import ApiToken, Editor, Stream, utcnow

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
# last_used_at is advisory: writing it on every request would make every read a write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


async def create_editor(
    session: AsyncSession, *, username: str, display_name: str | None = None,
    password: str | None = None, role: str = "editor",
) -> Editor:
    """Create an editor; a taken username is a 409, a short password a 422."""
    if not USERNAME_RE.match(username):
        raise ApiError(422, "invalid_username",
                       "username must be 2-64 lowercase letters, digits, '.', '_' or '-'")
    if role not in access.ROLES:
        raise ApiError(422, "invalid_role", f"role must be one of {', '.join(access.ROLES)}")
    try:
        password_hash = None if password is None else auth.hash_password(password)
    except auth.PasswordTooWeak as exc:
        raise ApiError(422, "weak_password", str(exc)) from None
    if (await session.exec(select(Editor.id).where(Editor.username == username))).first():
        raise conflict("username_taken", f"an editor named {username!r} already exists")
    editor = Editor(username=username, display_name=(display_name or username).strip()[:100],
                    password_hash=password_hash, role=role, created_at=utcnow())
    session.add(editor)
    try:
        await session.flush()
    except sa.exc.IntegrityError:
        raise conflict("username_taken", f"an editor named {username!r} already exists") from None
    return editor


async def get_editor(session: AsyncSession, *, username: str) -> Editor:
    """The editor with this username."""
    editor = await find_editor(session, username=username)
    if editor is None:
        raise not_found("editor", username)
    return editor


async def find_editor(session: AsyncSession, *, username: str) -> Editor | None:
    """The editor with this username, or None."""
    return (await session.exec(select(Editor).where(Editor.username == username))).first()


async def editor_by_id(session: AsyncSession, *, editor_id: int) -> Editor:
    """The editor with this id."""
    editor = await session.get(Editor, editor_id)
    if editor is None:
        raise not_found("editor", editor_id)
    return editor


async def set_disabled(session: AsyncSession, *, editor_id: int, disabled: bool) -> Editor:
    """Disable or enable an editor; disabling ends their sessions at once."""
    editor = await editor_by_id(session, editor_id=editor_id)
    editor.disabled = disabled
    if disabled:
        await sessions.end_all(session, editor_id=editor_id)
    await session.flush()
    return editor


async def set_password(
    session: AsyncSession, *, editor_id: int, password: str, keep_session_id: int | None = None
) -> Editor:
    """Give an editor a new password; their sessions end (but ``keep_session_id``)."""
    editor = await editor_by_id(session, editor_id=editor_id)
    try:
        editor.password_hash = auth.hash_password(password)
    except auth.PasswordTooWeak as exc:
        raise ApiError(422, "weak_password", str(exc)) from None
    await sessions.end_all(session, editor_id=editor_id, keep_id=keep_session_id)
    await session.flush()
    return editor


async def list_editors(session: AsyncSession) -> Sequence[Editor]:
    """Every editor, by username."""
    return (await session.exec(select(Editor).order_by(col(Editor.username)))).all()


async def authenticate_password(
    session: AsyncSession, *, username: str, password: str
) -> Editor | None:
    """The enabled editor with this username and password, or None."""
    return check_password(await find_editor(session, username=username), password)


def check_password(editor: Editor | None, password: str) -> Editor | None:
    """``editor`` if it is enabled and this is its password, else None; the check costs
    the same time when there is no editor, so that names cannot be told apart."""
    ok = auth.verify_password(editor.password_hash if editor else None, password)
    if not ok or editor is None or editor.disabled:
        return None
    return editor


async def create_token(
    session: AsyncSession, *, editor: Editor, name: str, scope: str = "write",
    streams: Sequence[str] | None = None, expires_in: timedelta | None = None,
) -> tuple[ApiToken, str]:
    """A new token for an editor; the plain token is returned once and never stored.

    ``scope`` must not exceed the editor's role (422); ``streams`` (None or empty: every
    stream) must name existing streams (404); ``expires_in`` None means never.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiError(422, "invalid_token_name", "token name must be 1-100 characters")
    if scope not in access.SCOPES:
        raise ApiError(422, "invalid_scope", f"scope must be one of {', '.join(access.SCOPES)}")
    if not access.role_allows_scope(editor.role, scope):
        raise ApiError(422, "scope_exceeds_role",
                       f"a token never does more than its editor, and {editor.username}'s "
                       f"role is {editor.role}: it cannot have the {scope!r} scope")
    bound = sorted(set(streams or ()))
    if bound:
        found = set((await session.exec(
            select(Stream.slug).where(col(Stream.slug).in_(bound)))).all())
        missing = [slug for slug in bound if slug not in found]
        if missing:
            raise not_found("stream", missing[0])
    assert editor.id is not None
    plain = auth.new_token()
    now = utcnow()
    token = ApiToken(editor_id=editor.id, name=name, token_hash=auth.token_hash(plain),
                     prefix=auth.token_display_prefix(plain), scope=scope,
                     streams=bound or None, created_at=now,
                     expires_at=None if expires_in is None else now + expires_in)
    session.add(token)
    await session.flush()
    return token, plain


def token_grant(token: ApiToken, editor: Editor) -> access.Grant:
    """What requests with ``token`` may do: its editor's role, narrowed by its scope and
    streams."""
    return access.Grant(role=editor.role, scope=token.scope,
                        streams=None if token.streams is None else frozenset(token.streams))


def token_expired(token: ApiToken) -> bool:
    """Whether ``token`` is past its expiry."""
    return token.expires_at is not None and token.expires_at <= utcnow()


async def list_tokens(session: AsyncSession, *, editor: Editor) -> Sequence[ApiToken]:
    """An editor's tokens, newest first, revoked ones included."""
    return (await session.exec(
        select(ApiToken).where(ApiToken.editor_id == editor.id)
        .order_by(col(ApiToken.id).desc())
    )).all()


async def list_all_tokens(
    session: AsyncSession, *, editor: Editor | None = None
) -> Sequence[tuple[ApiToken, Editor]]:
    """Every token (or ``editor``'s) with its editor, newest first, revoked ones included."""
    query = (select(ApiToken, Editor).join(Editor, col(Editor.id) == ApiToken.editor_id)
             .order_by(col(ApiToken.id).desc()))
    if editor is not None:
        query = query.where(ApiToken.editor_id == editor.id)
    return (await session.exec(query)).all()


async def get_token(session: AsyncSession, *, token_id: int) -> tuple[ApiToken, Editor]:
    """A token and its editor; a 404 when there is no such token."""
    row = (await session.exec(
        select(ApiToken, Editor).join(Editor, col(Editor.id) == ApiToken.editor_id)
        .where(ApiToken.id == token_id))).first()
    if row is None:
        raise not_found("token", token_id)
    return row[0], row[1]


async def revoke_token(session: AsyncSession, *, token_id: int) -> ApiToken:
    """Revoke a token; revoking twice keeps the first time."""
    token = await session.get(ApiToken, token_id)
    if token is None:
        raise not_found("token", token_id)
    token.revoked_at = token.revoked_at or utcnow()
    return token


async def editor_for_token(session: AsyncSession, *, plain: str) -> tuple[Editor, ApiToken] | None:
    """The token's editor, if the token exists and is not revoked (disabled editors and
    expired tokens too: the caller tells them apart)."""
    row = (await session.exec(
        select(ApiToken, Editor).join(Editor, col(Editor.id) == ApiToken.editor_id)
        .where(ApiToken.token_hash == auth.token_hash(plain))
    )).first()
    if row is None or row[0].revoked_at is not None:
        return None
    return row[1], row[0]


async def touch_token(session: AsyncSession, *, token_id: int) -> None:
    """Record that a token was used, at most once per interval."""
    now = utcnow()
    await session.exec(
        sa.update(ApiToken).where(
            col(ApiToken.id) == token_id,
            sa.or_(col(ApiToken.last_used_at).is_(None),
                   col(ApiToken.last_used_at) < now - TOKEN_TOUCH_INTERVAL),
        ).values(last_used_at=now).execution_options(synchronize_session=False)
    )
