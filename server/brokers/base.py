"""The broker interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BrokerMessage:
    """One event published on a stream's channel."""

    channel: str
    payload: str


class Broker(Protocol):
    """Publish/subscribe between server processes.

    Contract: delivery is at most once. Messages published on one channel by one
    process arrive in the order they were published, but any of them may be lost (a
    broker outage, a full queue): subscribers must detect gaps by seq and repair them
    from the database. ``publish`` never blocks on slow subscribers.
    """

    async def connect(self) -> None:
        """Open connections; call once before anything else."""

    async def disconnect(self) -> None:
        """Close connections; ``next_messages`` then raises ``BrokerClosed``."""

    async def subscribe(self, channel: str) -> None:
        """Start receiving messages published on ``channel``."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving messages published on ``channel``."""

    async def publish(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every process subscribed to ``channel``."""

    async def next_messages(self, limit: int) -> list[BrokerMessage]:
        """Wait for the next message on any subscribed channel; return it together with
        those that arrived after it and are already here (at most ``limit`` in all), in
        the order they arrived. The caller fans them out in one pass: under load a
        reader's events then leave in one write rather than one write each."""


class BrokerClosed(Exception):
    """The broker was disconnected."""
