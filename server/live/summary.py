"""The summary line: what the live side of one process did, every few seconds.

Instead of a line per connection, each process writes one ``bulletin.summary`` line every
``log_summary_seconds`` (60 by default): the WebSocket and SSE connections open now
(readers, and editors' desks), and in the interval the connections opened and ended,
the events this process published and those it received through the broker, the slow
connections closed (evictions) and the resets sent. The counts are the driver's and the
hub's plain counters, read on the tick: the fan-out does no work for it. In JSON the
numbers are fields of their own (``ws``, ``sse``, ``connects``, ``disconnects``,
``published``, ``received``, ``evictions``, ``resets``, ``interval_s``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ..core.hub import Hub

log = logging.getLogger("bulletin.summary")
_COUNTERS = ("connects", "disconnects", "published", "received")


class Counted(Protocol):
    """What the summary reads: the hub driver's counters (live/driver.py) and its hub."""

    hub: Hub
    ws: int
    sse: int
    connects: int
    disconnects: int
    published: int
    received: int


class Summary:
    """Reads a driver's counters and writes the difference since the last line."""

    def __init__(self, driver: Counted) -> None:
        self.driver = driver
        self._last = self._counts()

    def _counts(self) -> dict[str, int]:
        driver = self.driver
        counts = {name: getattr(driver, name) for name in _COUNTERS}
        counts["evictions"] = driver.hub.evicted
        counts["resets"] = driver.hub.counters.resets
        return counts

    def fields(self, interval: float) -> dict[str, Any]:
        """The line's numbers since the last call (which they become the base of)."""
        now = self._counts()
        fields: dict[str, Any] = {"ws": self.driver.ws, "sse": self.driver.sse}
        fields.update({name: now[name] - self._last[name] for name in now})
        fields["interval_s"] = interval
        self._last = now
        return fields

    def write(self, interval: float) -> None:
        """Write one summary line."""
        f = self.fields(interval)
        log.info("%d WebSocket and %d SSE connections open; in the last %g s: %d connected, "
                 "%d disconnected, %d events published here, %d received, %d slow "
                 "connections evicted, %d resets sent", f["ws"], f["sse"], interval,
                 f["connects"], f["disconnects"], f["published"], f["received"],
                 f["evictions"], f["resets"], extra=f)

    async def run(self, interval: float) -> None:
        """Write a line every ``interval`` seconds, for ever."""
        while True:
            await asyncio.sleep(interval)
            self.write(interval)
