"""What the request handlers share: settings, database, broker and limiters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from ..core.ratelimit import RateLimiter
from ..live.brokers import Broker
from ..live.brokers.base import BrokerUnavailable
from ..settings import Settings
from ..store.db import Database
from ..store.models import Event

if TYPE_CHECKING:
    from ..live.driver import Live

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
    # Failed desk sign-ins per account, and per (account, browser that signed in before).
    account_failures: RateLimiter
    live: Live
    clock: Callable[[], float] = field(default=time.monotonic)

    async def publish(self, slug: str, events: Sequence[Event]) -> None:
        """Send committed events to this process's readers and, through the broker, to
        every other process; a broker failure is logged, never raised.

        The events are already in the database, which is the source of truth: a process
        that misses one here sees the gap in seq, or gets a Resync from its broker, and
        reads it from there.
        """
        if not events:
            return
        self.live.deliver(event.payload for event in events)
        for event in events:
            try:
                await self.broker.publish(channel_for(slug), event.payload)
            except BrokerUnavailable as exc:
                log.warning("could not publish %s seq %s: %s", slug, event.seq, exc)
            except Exception:
                log.exception("could not publish %s seq %s to the broker", slug, event.seq)


def services(conn: HTTPConnection) -> Services:
    """The services of the app serving this request."""
    result: Services = conn.app.state.services
    return result
