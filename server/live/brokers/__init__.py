"""Brokers carry committed events between server processes; picked by URL scheme."""

from __future__ import annotations

from .base import Broker, BrokerMessage, BrokerState, Resync

SCHEMES = ("memory", "redis", "rediss")


def broker_from_url(url: str) -> Broker:
    """The broker for a URL; implementations are imported only when chosen."""
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker()
    if scheme in ("redis", "rediss"):
        from .redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}")


__all__ = ["SCHEMES", "Broker", "BrokerMessage", "BrokerState", "Resync", "broker_from_url"]
