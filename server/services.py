"""What the request handlers share: settings, database, broker and limiters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from .brokers import Broker
from .db import Database
from .models import Event
from .ratelimit import RateLimiter
from .settings import Settings

if TYPE_CHECKING:
    from .live import Live

log = logging.getLogger("bulletin")


def channel_for(slug: str) -> str:
    """The broker channel that carries a stream's events."""
    return f"stream:{slug}"


@dataclass(slots=True)
class Services:
    """Built by the app's lifespan; one per process."""

    settings: Settings
    db: Database
    broker: Broker
    write_limiter: RateLimiter
    auth_failures: RateLimiter
    live: Live
    clock: Callable[[], float] = field(default=time.monotonic)

    async def publish(self, slug: str, events: Sequence[Event]) -> None:
        """Send committed events to every process; a failure is logged, never raised.

        The events are already in the database, which is the source of truth: a
        subscriber that misses one here sees the gap in seq and reads it from there.
        """
        for event in events:
            try:
                await self.broker.publish(channel_for(slug), event.payload)
            except Exception:
                log.exception("could not publish %s seq %s to the broker", slug, event.seq)


def services(conn: HTTPConnection) -> Services:
    """The services of the app serving this request."""
    result: Services = conn.app.state.services
    return result
