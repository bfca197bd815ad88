"""The bounded queue where a broker leaves messages for the process's pump.

Both brokers share it: an overflow drops the message and makes the next batch a single
``Resync`` (the consumer then repairs the loss from the database), and closing wakes a
waiting reader even when the queue is full.
"""

from __future__ import annotations

import asyncio

from .base import BrokerClosed, BrokerMessage, Resync

Item = BrokerMessage | Resync


class Inbox:
    """Messages waiting for ``next_messages``."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue(size)
        # Messages were dropped since the last batch was handed out.
        self._lost = False
        self._closed_seen = False
        self.dropped = 0

    def reopen(self) -> None:
        """Accept messages again after a close (the broker connected again)."""
        self._closed_seen = False

    def offer(self, item: Item) -> None:
        """Queue ``item``; never waits. When full, drop it and ask for a resync."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            self._lost = True

    def close(self) -> None:
        """Wake the reader with "closed", making room for the marker if need be."""
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def take(self, limit: int, *, closed: bool) -> list[Item]:
        """The next item and those already queued after it, at most ``limit``; raises
        ``BrokerClosed`` once the broker is ``closed`` and nothing is left."""
        if self._closed_seen or (closed and self._queue.empty()):
            raise BrokerClosed("broker is not connected")
        if self._lost:
            # Whatever was dropped was committed before it was published, so a read of the
            # database from now on finds it.
            self._lost = False
            return [Resync()]
        item = await self._queue.get()
        if item is None:
            self._closed_seen = True
            raise BrokerClosed("broker was disconnected")
        batch = [item]
        while len(batch) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:  # disconnected: the next call says so
                self._closed_seen = True
                break
            batch.append(item)
        return batch
