"""What an open connection authenticated with, and whether that still holds.

A WebSocket or SSE connection outlives the request that opened it, so taking access
back must reach connections that are already open: each remembers its ``Credential``
(the editor and the API token or desk session used), and the live layer asks
``still_valid`` about all of them every few seconds, and at once when a process announces
on the broker's ``CONTROL_CHANNEL`` that access was taken back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..settings import Settings
from .models import ApiToken, Editor, EditorSession, utcnow

# Broker channel names of streams are "stream:<slug>", so this one cannot collide.
CONTROL_CHANNEL = "control:credentials"
# The message published on it: "check the credentials of your connections now".
CHANGED = "changed"
# Where a request's scope keeps the Credential it authenticated with.
SCOPE_KEY = "bulletin.credential"


@dataclass(frozen=True, slots=True)
class Credential:
    """An editor's API token (``token_id``) or desk session (``session_id``)."""

    editor_id: int
    token_id: int | None = None
    session_id: int | None = None


async def still_valid(session: AsyncSession, held: Collection[object], *,
                      settings: Settings) -> set[object]:
    """The members of ``held`` that still grant access: the token is not revoked nor
    expired, the session has not ended or expired, and the editor is not disabled."""
    creds = [c for c in held if isinstance(c, Credential)]
    token_ids = {c.token_id for c in creds if c.token_id is not None}
    session_ids = {c.session_id for c in creds if c.session_id is not None}
    good_tokens: set[int] = set()
    good_sessions: set[int] = set()
    if token_ids:
        rows = await session.exec(
            select(ApiToken.id).join(Editor, col(Editor.id) == ApiToken.editor_id)
            .where(col(ApiToken.id).in_(token_ids), col(ApiToken.revoked_at).is_(None),
                   or_(col(ApiToken.expires_at).is_(None), col(ApiToken.expires_at) > utcnow()),
                   col(Editor.disabled).is_(False)))
        good_tokens = {i for i in rows.all() if i is not None}
    if session_ids:
        now = utcnow()
        idle = timedelta(minutes=settings.session_idle_minutes)
        rows2 = await session.exec(
            select(EditorSession).join(Editor, col(Editor.id) == EditorSession.editor_id)
            .where(col(EditorSession.id).in_(session_ids), col(Editor.disabled).is_(False)))
        good_sessions = {s.id for s in rows2.all()
                         if s.id is not None and s.expires_at > now
                         and s.last_seen_at + idle > now}
    valid: set[object] = {c for c in held if not isinstance(c, Credential)}
    for c in creds:
        if (c.token_id is None or c.token_id in good_tokens) and (
                c.session_id is None or c.session_id in good_sessions):
            valid.add(c)
    return valid
