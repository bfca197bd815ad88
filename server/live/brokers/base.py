"""The broker interface."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


def stream_channel(slug: str) -> str:
    """The broker channel that carries a stream's events."""
    return f"stream:{slug}"


@dataclass(frozen=True, slots=True)
class BrokerMessage:
    """One event published on a stream's channel."""

    channel: str
    payload: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Messages may have been lost before this point (a broker outage, a full queue).

    Every subscription is active again when it is handed out, so whatever the consumer
    reads from the database after seeing it, together with the messages that follow it,
    leaves nothing out.
    """


class BrokerState(enum.Enum):
    """Where a broker's connection stands."""

    # Not connected yet, or disconnected for good.
    CLOSED = "closed"
    # Subscriptions are active: published messages arrive.
    CONNECTED = "connected"
    # The connection was lost (or never made): retrying with back-off. Publishing fails
    # at once; nothing arrives until a Resync is handed out.
    RECONNECTING = "reconnecting"


class Broker(Protocol):
    """Publish/subscribe between server processes.

    Contract: delivery is at most once. Messages published on one channel by one
    process arrive in the order they were published, but any of them may be lost (a
    broker outage, a full queue): subscribers detect a gap by seq and repair it from the
    database. When the broker knows it lost messages, it says so with a ``Resync`` in
    ``next_messages``, so that a gap at the end of a stream is repaired too, without
    waiting for a later event. ``publish`` never blocks on slow subscribers, and fails
    fast (raises) while the broker is unreachable.
    """

    @property
    def state(self) -> BrokerState:
        """The connection's state (for readiness checks and logs)."""

    @property
    def reconnects(self) -> int:
        """Times the connection was made again after it was lost (for the metrics)."""

    async def connect(self) -> None:
        """Start; call once before anything else. An unreachable broker is not an error
        here: the broker keeps retrying in the background (state RECONNECTING)."""

    async def disconnect(self) -> None:
        """Close connections; ``next_messages`` then raises ``BrokerClosed``."""

    async def subscribe(self, channel: str) -> None:
        """Receive messages published on ``channel`` from now on.

        Returns once the subscription is active, or at once while the broker is
        reconnecting (the subscription then starts with the next ``Resync``).
        """

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving messages published on ``channel``."""

    async def publish(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every process subscribed to ``channel``."""

    async def next_messages(self, limit: int) -> list[BrokerMessage | Resync]:
        """Wait for the next message on any subscribed channel; return it together with
        those that arrived after it and are already here (at most ``limit`` in all), in
        the order they arrived. The caller fans them out in one pass: under load a
        reader's events then leave in one write rather than one write each."""


class BrokerClosed(Exception):
    """The broker was disconnected."""


class BrokerUnavailable(Exception):
    """The broker cannot be reached right now; it is reconnecting.

    Not a ConnectionError on purpose: the app answers those with "database unavailable".
    """
