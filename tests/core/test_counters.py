"""The hub's plain counters (core/counters.py) move with what the hub does."""

from __future__ import annotations

from bulletin.core import closecodes
from bulletin.core.hub import Hub
from bulletin.core.prepared import Encoding

from .test_hub import connect, ev, evs, live_hub, load


def test_open_connections_count_by_encoding_and_each_end_once() -> None:
    """Connections are counted open by encoding; one the hub closed and whose peer then
    goes is counted closed (by code) and not also as left."""
    hub = Hub()
    ws, _ = connect(hub, encoding=Encoding.FRAME)
    sse, _ = connect(hub, encoding=Encoding.SSE)
    counters = hub.counters
    assert counters.connected == 2
    assert counters.open[Encoding.FRAME] == counters.open[Encoding.SSE] == 1
    hub.close(ws, closecodes.UNAUTHORIZED)
    hub.disconnect(ws)
    hub.disconnect(sse)
    assert counters.open == dict.fromkeys(Encoding, 0)
    assert counters.closed == {closecodes.UNAUTHORIZED.code: 1}
    assert counters.left == 1


def test_events_are_counted_once_and_writes_once_per_subscriber_batch() -> None:
    """Events applied count once, whatever the number of subscribers; a batch of events
    written to a subscriber in one write counts one frame."""
    hub, _, _ = live_hub(seq=0)
    for _ in range(2):
        other, _ = connect(hub)
        hub.subscribe(other, "s", None)
    before = hub.counters.frames
    hub.events_committed(evs(1, 3))
    assert hub.counters.events == 3
    # MESSAGE outlets take one message per event: 3 subscribers x 3 events.
    assert hub.counters.frames - before == 9
    frame_hub = Hub()
    sub, _ = connect(frame_hub, encoding=Encoding.FRAME)
    load(frame_hub, frame_hub.subscribe(sub, "s", None), seq=0)
    before = frame_hub.counters.frames
    frame_hub.events_committed(evs(1, 3))
    assert frame_hub.counters.frames - before == 1
    assert frame_hub.counters.subscribed == 1


def test_resets_and_slow_evictions_are_counted() -> None:
    """A resume too far back counts a reset; a subscriber over its limit counts an
    eviction and a close with SLOW's code."""
    hub, _, _ = live_hub(seq=2000, replay_limit=1000)
    sub, _ = connect(hub)
    hub.subscribe(sub, "s", 10)
    assert hub.counters.resets == 1
    slow_hub = Hub(max_pending=100)
    slow, _ = connect(slow_hub)
    load(slow_hub, slow_hub.subscribe(slow, "s", None), seq=0)
    for seq in range(1, 10):
        slow_hub.event_committed(ev(seq))
    assert slow_hub.evicted == 1
    assert slow_hub.counters.closed == {closecodes.SLOW.code: 1}
    assert slow_hub.counters.open[Encoding.MESSAGE] == 0
