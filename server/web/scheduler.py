"""The scheduler: scheduled posts go out at their time, from whichever process is running.

Every server process runs one (the app's lifespan starts it and stops it). About every
``POLL_SECONDS`` it asks the database which streams have a scheduled post due
(``publishing.due_streams``), and publishes each stream's in one write transaction
(``publishing.publish_due``) whose ``post.created`` events then go to readers through
``writes.commit``, like any other change. The database holds the schedule, so a post
goes out even when the process that accepted it has stopped; several processes asking at
once publish each post exactly once (``publishing`` says how). A post is out within
``POLL_SECONDS`` plus one write of its time, while any process runs.

A failing round (the database away) is logged, throttled, and the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from ..store import publishing
from ..store.models import Event, utcnow
from .services import Services
from .writes import commit

POLL_SECONDS = 0.5
# How long stopping waits for a round under way before cancelling it.
STOP_WAIT_SECONDS = 5.0
log = logging.getLogger("bulletin.scheduler")


class Scheduler:
    """Publishes due scheduled posts in the background, until stopped."""

    def __init__(self, svc: Services, *, interval: float = POLL_SECONDS) -> None:
        self.svc = svc
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Begin the rounds (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bulletin-scheduler")

    async def stop(self) -> None:
        """End the rounds. A round under way is let finish (a few milliseconds): one
        cancelled inside a database call would leave the driver's thread answering a loop
        that may be gone. One that does not finish in ``STOP_WAIT_SECONDS`` is cancelled:
        its transaction rolls back, and another process, or this one's next start,
        publishes those posts."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(task, STOP_WAIT_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            pass

    async def publish_due(self) -> int:
        """One round: publish every scheduled post due now; returns how many this
        process published."""
        now = utcnow()
        async with self.svc.db.read() as session:
            stream_ids = await publishing.due_streams(session, now=now)
        published = 0
        for stream_id in stream_ids:

            async def change(session: AsyncSession, stream_id: int = stream_id
                             ) -> tuple[int, str, list[Event]]:
                slug, events = await publishing.publish_due(session, stream_id=stream_id,
                                                            now=now)
                return len(events), slug, events

            published += await commit(self.svc, change)
        if published:
            log.info("published %d scheduled posts", published)
        return published

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            try:
                await self.publish_due()
            except Exception:
                log.exception("could not publish scheduled posts; trying again")
            try:
                await asyncio.wait_for(self._stopping.wait(),
                                       max(0.0, self.interval - (loop.time() - started)))
            except TimeoutError:
                pass
