"""A change to a stream: one write transaction, then its events published.

Every handler that changes a stream (the API's, the desk's and the scheduler's) goes
through ``commit``, so that no event is published before its transaction has committed,
and none is forgotten after; the same holds for the notice that a stream's posts that
wait changed (``store/waiting.py``), which editors' desks hear.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from ..store import waiting
from ..store.models import Event
from .services import Services

T = TypeVar("T")

# A change returns its result, the slug of the stream it changed and the events it wrote.
Change = Callable[[AsyncSession], Awaitable[tuple[T, str, Sequence[Event]]]]


async def commit(svc: Services, change: Change[T]) -> T:
    """Run ``change`` in one write transaction; once it has committed, publish its events
    to this process's readers and every other process (``HubDriver.publish``), and tell
    the editors of the streams whose posts that wait it changed."""
    async with svc.db.write() as session:
        result, slug, events = await change(session)
        queues = waiting.streams(session)
    await svc.live.publish(slug, events)
    if queues:
        await svc.live.queue_changed(queues)
    return result
