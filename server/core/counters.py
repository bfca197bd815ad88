"""Plain counters the hub keeps as it works, read by the metrics when scraped.

Nothing here is a metrics library: the hub adds to integers in code that already runs
(one addition per subscriber batch, not per event or byte), and whoever reports them
(``web/metrics.py``) reads them on its own schedule. Counters only grow; ``open`` counts
the connections open now, by encoding.
"""

from __future__ import annotations

from .prepared import Encoding


class HubCounters:
    """What the hub has done since the process started."""

    __slots__ = ("closed", "connected", "events", "frames", "left", "open", "resets",
                 "subscribed")

    def __init__(self) -> None:
        # Connections opened, and those open now, by encoding.
        self.connected = 0
        self.open: dict[Encoding, int] = dict.fromkeys(Encoding, 0)
        # Connections the server closed, by close code; connections whose peer went away.
        self.closed: dict[int, int] = {}
        self.left = 0
        # Subscriptions made; events applied to a channel (each counted once per process);
        # writes to subscribers' outlets (events, replays and control messages; a batch of
        # events written in one go counts once); resets sent.
        self.subscribed = 0
        self.events = 0
        self.frames = 0
        self.resets = 0
