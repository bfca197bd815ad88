"""What the request handlers share: settings, database, broker, hub driver and limiters.

A plain bag built by the app's lifespan, one per process. It performs nothing itself:
publishing belongs to the hub driver (``HubDriver.publish``), writes to ``writes.commit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from ..core.ratelimit import RateLimiter
from ..live.brokers import Broker
from ..live.driver import HubDriver
from ..settings import Settings
from ..store.db import Database
from ..store.media import MediaStore

if TYPE_CHECKING:
    from .cardmaker import CardMaker
    from .imaging import ImageWorkers


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
    live: HubDriver
    # Where photos' files go, and the worker processes that make them (media_workers).
    media: MediaStore
    imaging: ImageWorkers
    # Cards for links to videos and social posts (oEmbed), with their background fetches.
    cards: CardMaker
    clock: Callable[[], float] = field(default=time.monotonic)


def services(conn: HTTPConnection) -> Services:
    """The services of the app serving this request."""
    result: Services = conn.app.state.services
    return result
