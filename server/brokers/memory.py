"""The in-process broker: one server process, nothing to install."""

from __future__ import annotations

import asyncio

from .base import BrokerClosed, BrokerMessage, BrokerState, Resync

DEFAULT_QUEUE_SIZE = 10_000


class MemoryBroker:
    """Delivers published messages to this process's own subscriptions.

    The queue is bounded: when the consumer falls that far behind, new messages are
    dropped and counted, and the next call of ``next_messages`` hands out a ``Resync`` so
    that the consumer repairs the loss from the database.
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[BrokerMessage | None] = asyncio.Queue(queue_size)
        self._connected = False
        self._closed_seen = False
        # Messages were dropped since the last batch was handed out.
        self._lost = False
        self.dropped = 0

    @property
    def state(self) -> BrokerState:
        """CONNECTED between connect and disconnect: there is nothing to lose touch with."""
        return BrokerState.CONNECTED if self._connected else BrokerState.CLOSED

    async def connect(self) -> None:
        """Start accepting messages."""
        self._connected = True
        self._closed_seen = False

    async def disconnect(self) -> None:
        """Stop; a waiting ``next_messages`` raises ``BrokerClosed``."""
        self._connected = False
        self._channels.clear()
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def subscribe(self, channel: str) -> None:
        """Receive messages published on ``channel`` from now on."""
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: str) -> None:
        """Queue the message if someone here follows the channel; never waits."""
        if not self._connected:
            raise BrokerClosed("broker is not connected")
        if channel not in self._channels:
            return
        try:
            self._queue.put_nowait(BrokerMessage(channel, payload))
        except asyncio.QueueFull:
            self.dropped += 1
            self._lost = True

    async def next_messages(self, limit: int) -> list[BrokerMessage | Resync]:
        """The next message on any subscribed channel, and those queued after it."""
        if self._closed_seen or (not self._connected and self._queue.empty()):
            raise BrokerClosed("broker is not connected")
        if self._lost:
            # Whatever was dropped was committed before it was published, so a read of the
            # database from now on finds it.
            self._lost = False
            return [Resync()]
        message = await self._queue.get()
        if message is None:
            self._closed_seen = True
            raise BrokerClosed("broker was disconnected")
        batch: list[BrokerMessage | Resync] = [message]
        while len(batch) < limit and not self._queue.empty():
            message = self._queue.get_nowait()
            if message is None:  # disconnected: the next call says so
                self._closed_seen = True
                break
            batch.append(message)
        return batch
