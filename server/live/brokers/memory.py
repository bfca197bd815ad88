"""The in-process broker: one server process, nothing to install."""

from __future__ import annotations

from .base import BrokerClosed, BrokerMessage, BrokerState, Resync
from .inbox import Inbox

DEFAULT_QUEUE_SIZE = 10_000


class MemoryBroker:
    """Delivers published messages to this process's own subscriptions.

    The queue is bounded: when the consumer falls that far behind, new messages are
    dropped and counted, and the next call of ``next_messages`` hands out a ``Resync`` so
    that the consumer repairs the loss from the database.
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._channels: set[str] = set()
        self._inbox = Inbox(queue_size)
        self._connected = False

    @property
    def state(self) -> BrokerState:
        """CONNECTED between connect and disconnect: there is nothing to lose touch with."""
        return BrokerState.CONNECTED if self._connected else BrokerState.CLOSED

    @property
    def reconnects(self) -> int:
        """Never: there is no connection to lose."""
        return 0

    async def connect(self) -> None:
        """Start accepting messages."""
        self._connected = True
        self._inbox.reopen()

    async def disconnect(self) -> None:
        """Stop; a waiting ``next_messages`` raises ``BrokerClosed``."""
        self._connected = False
        self._channels.clear()
        self._inbox.close()

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
        self._inbox.offer(BrokerMessage(channel, payload))

    async def next_messages(self, limit: int) -> list[BrokerMessage | Resync]:
        """The next message on any subscribed channel, and those queued after it."""
        return await self._inbox.take(limit, closed=not self._connected)

    @property
    def dropped(self) -> int:
        """Messages dropped because the consumer was a whole queue behind."""
        return self._inbox.dropped
