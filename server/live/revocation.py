"""Telling running servers that access was taken back, from outside them (the CLI).

A server process checks the credentials of its open connections every
``credential_check_seconds`` on its own; with a shared broker (Redis) the CLI also
announces the change on the broker's control channel, so that every process checks at
once. With the in-process broker there is nothing to reach: the periodic check applies.
"""

from __future__ import annotations

import logging

from ..settings import Settings
from ..store.credentials import CHANGED, CONTROL_CHANNEL
from .brokers import broker_from_url
from .brokers.base import BrokerUnavailable

log = logging.getLogger("bulletin.revocation")


async def announce(settings: Settings) -> bool:
    """Ask every running process to check its connections now; False if it could not
    be told (it then notices within ``credential_check_seconds``)."""
    if not settings.shared_broker:
        return False
    broker = broker_from_url(settings.broker_url)
    await broker.connect()
    try:
        await broker.publish(CONTROL_CHANNEL, CHANGED)
        return True
    except BrokerUnavailable as exc:
        log.warning("could not reach the broker to announce the change (%s); running "
                    "servers notice within %.0f s", exc, settings.credential_check_seconds)
        return False
    finally:
        await broker.disconnect()
