"""Editor desk sessions and CSRF tokens.

A signed-in browser holds a random token in the ``bulletin_session`` cookie; the
database keeps only its SHA-256, as for API tokens, so a copy of the database signs
nobody in. Sessions end on sign-out (the row is deleted), after ``session_idle_minutes``
without a request, ``session_max_hours`` after signing in, and when the editor is
disabled or their password is reset.

CSRF tokens are HMACs with the secret key, so they need no storage: a session's token
is derived from the session's hash, and the sign-in form's from a random nonce kept in a
short-lived pre-session cookie, with the time it was issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..settings import Settings
from . import auth
from .models import Editor, EditorSession, utcnow

COOKIE = "bulletin_session"
LOGIN_COOKIE = "bulletin_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# How long a sign-in form stays valid, and the pre-session cookie with it.
LOGIN_FORM_SECONDS = 2 * 3600
# last_seen_at is written at most this often, so that reads stay reads.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The editor behind a valid session cookie, and that session's CSRF token."""

    editor: Editor
    session: EditorSession
    csrf: str


def new_secret() -> str:
    """A new cookie token: 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(settings: Settings, session_hash: str) -> str:
    """The CSRF token of a session: fixed for the session's life, useless without it."""
    return _mac(settings, f"csrf|{session_hash}")


def csrf_ok(signed_in: SignedIn, sent: str | None) -> bool:
    """Whether a form field or header carries this session's CSRF token."""
    return bool(sent) and auth.constant_time_equals(signed_in.csrf, sent or "")


def login_csrf(settings: Settings, nonce: str, *, now: float | None = None) -> str:
    """The sign-in form's token: bound to the pre-session cookie's nonce and the time."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_mac(settings, f'login|{nonce}|{issued}')}"


def login_csrf_ok(settings: Settings, nonce: str | None, sent: str | None, *,
                  now: float | None = None) -> bool:
    """Whether the sign-in form's token matches the cookie's nonce and has not expired."""
    if not nonce or not sent:
        return False
    issued, _, mac = sent.partition(".")
    if not issued.isdigit() or len(issued) > 12:
        return False
    age = (time.time() if now is None else now) - int(issued)
    if not 0 <= age <= LOGIN_FORM_SECONDS:
        return False
    return auth.constant_time_equals(mac, _mac(settings, f"login|{nonce}|{issued}"))


def sign(settings: Settings, value: str) -> str:
    """``value`` with a MAC appended, for cookies the server reads back (flash messages)."""
    return f"{value}.{_mac(settings, f'signed|{value}')}"


def unsign(settings: Settings, signed: str | None) -> str | None:
    """The value of a ``sign``ed string, or None when it was tampered with."""
    value, _, mac = (signed or "").rpartition(".")
    if not value or not auth.constant_time_equals(mac, _mac(settings, f"signed|{value}")):
        return None
    return value


def _mac(settings: Settings, message: str) -> str:
    return hmac.new(settings.secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- sessions in the database ------------------------------------------------------------


async def start(
    session: AsyncSession, *, settings: Settings, editor: Editor, user_agent: str, ip: str
) -> tuple[EditorSession, str]:
    """Open a session for an editor; the plain token is returned once, for the cookie."""
    assert editor.id is not None
    now = utcnow()
    await _delete_expired(session, settings)
    plain = new_secret()
    row = EditorSession(
        token_hash=token_hash(plain), editor_id=editor.id, created_at=now, last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
        user_agent=user_agent[:200], ip=ip[:64])
    session.add(row)
    await session.flush()
    return row, plain


async def find(
    session: AsyncSession, *, settings: Settings, plain: str
) -> tuple[EditorSession, Editor] | None:
    """The live session with this token and its enabled editor, or None."""
    if not plain or len(plain) > 100:
        return None
    row = (await session.exec(
        select(EditorSession, Editor).join(Editor, col(Editor.id) == EditorSession.editor_id)
        .where(EditorSession.token_hash == token_hash(plain))
    )).first()
    if row is None:
        return None
    found, editor = row
    now = utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    if editor.disabled or found.expires_at <= now or found.last_seen_at + idle <= now:
        return None
    return found, editor


def needs_touch(found: EditorSession) -> bool:
    """Whether last_seen_at is old enough to be worth writing."""
    return found.last_seen_at < utcnow() - TOUCH_INTERVAL


async def touch(session: AsyncSession, *, session_id: int) -> None:
    """Record that a session was used (it stays signed in while used)."""
    await session.exec(
        sa.update(EditorSession).where(col(EditorSession.id) == session_id)
        .values(last_seen_at=utcnow()).execution_options(synchronize_session=False))


async def end(session: AsyncSession, *, plain: str) -> None:
    """Sign a browser out: its session row is deleted."""
    await session.exec(sa.delete(EditorSession).where(
        col(EditorSession.token_hash) == token_hash(plain)))


async def end_all(
    session: AsyncSession, *, editor_id: int, keep_id: int | None = None
) -> int:
    """End every session of an editor (but ``keep_id``); returns how many ended."""
    query = sa.delete(EditorSession).where(col(EditorSession.editor_id) == editor_id)
    if keep_id is not None:
        query = query.where(col(EditorSession.id) != keep_id)
    result = await session.exec(query)
    return int(result.rowcount or 0)


async def _delete_expired(session: AsyncSession, settings: Settings) -> None:
    now = utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    await session.exec(sa.delete(EditorSession).where(sa.or_(
        col(EditorSession.expires_at) <= now, col(EditorSession.last_seen_at) <= now - idle)))
