"""Which streams' posts that wait (submitted, returned, scheduled) a transaction changed.

A post that waits changes without an event, so readers' seq says nothing of it; the
desks that list those posts still need to hear of it. The store notes the stream on the
session as it makes such a change (``changed``); once the transaction has committed,
``web/writes.commit`` reads the notes (``streams``) and has every editor following those
streams told (a ``queue`` frame, ``live/newsroom.py``).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

_KEY = "bulletin.waiting_changed"


def changed(session: AsyncSession, slug: str) -> None:
    """The posts that wait on ``slug`` change in this transaction."""
    session.info.setdefault(_KEY, set()).add(slug)


def streams(session: AsyncSession) -> set[str]:
    """The streams noted by ``changed`` in this session's transaction."""
    return set(session.info.get(_KEY, ()))
