"""The hub: streams → subscribers, encode once, byte-bounded outlets. No I/O.

The hub is a state machine driven by plain method calls from the transport layer
(``live.py``): connections come and go, subscribe and unsubscribe; committed events
arrive from the broker; rows arrive from the database when the hub asked for them.
Each call returns the ``Need``s it created — database reads and broker subscriptions —
which the caller carries out and answers with ``stream_loaded`` / ``events_loaded``.

Guarantees, per stream: a subscriber receives ``subscribed``, then every event after its
``since`` exactly once and in seq order. The hub keeps each followed stream's head seq
and a window of its newest events; a subscriber whose ``since`` is inside the window is
served from memory at once, an older one waits (not receiving live events) until the
database rows arrive, and concurrent waiters share one read. Live events that skip a seq
are held back until the missing ones are read from the database; when the broker says it
may have lost events (``resync``), every followed stream is read after its head, so that
a loss at the end of a quiet stream is repaired too.

Fan-out encodes an event once per transport encoding and writes the same bytes to every
subscriber's outlet without waiting for any of them; events that arrive together
(``publish_many``) go out to each subscriber in one write. An outlet holding more than
``max_pending`` unsent bytes is closed with the SLOW code.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from . import closecodes, protocol
from .closecodes import CloseCode

PUBLIC_STATUSES = frozenset({"live", "ended"})


class Encoding(enum.Enum):
    """How an outlet wants frames: which bytes ``Outlet.write`` receives."""

    # A complete WebSocket frame, written straight to the socket.
    FRAME = "frame"
    # The bare JSON message, for transports that frame it themselves (ASGI websocket.send).
    MESSAGE = "message"
    # A Server-Sent Events record.
    SSE = "sse"


class Outlet(Protocol):
    """Where one subscriber's bytes go. ``write`` must not block."""

    def write(self, data: bytes) -> int:
        """Queue ``data`` for sending; return the bytes written but not yet handed to
        the network (one call per subscriber per event: the hot path)."""

    def close(self, code: CloseCode) -> None:
        """Close the connection with ``code`` after what is already written."""


class Event:
    """One committed event with its encodings, each built once."""

    __slots__ = ("_frame", "_sse", "op", "payload", "seq", "status", "stream")

    def __init__(self, stream: str, seq: int, op: str, payload: bytes,
                 status: str | None = None) -> None:
        self.stream = stream
        self.seq = seq
        self.op = op
        self.payload = payload
        # The stream's status after this event, for stream.* events.
        self.status = status
        self._frame: bytes | None = None
        self._sse: bytes | None = None

    @classmethod
    def from_payload(cls, payload: str | bytes) -> Event:
        """Read an event from its stored wire JSON."""
        data = json.loads(payload)
        info = data.get("stream_info")
        status = info.get("status") if isinstance(info, dict) else None
        raw = payload.encode() if isinstance(payload, str) else payload
        return cls(data["stream"], data["seq"], data["op"], raw, status)

    def encoded(self, encoding: Encoding) -> bytes:
        """The event as ``encoding`` wants it."""
        if encoding is Encoding.FRAME:
            if self._frame is None:
                self._frame = protocol.ws_frame(self.payload)
            return self._frame
        if encoding is Encoding.SSE:
            if self._sse is None:
                self._sse = protocol.sse_event(self.payload, event=self.op, id=self.seq)
            return self._sse
        return self.payload

    def __repr__(self) -> str:
        return f"Event({self.stream!r}, {self.seq}, {self.op!r})"


# --- what the hub asks of the transport layer --------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadStream:
    """Follow the stream's broker channel, then read its status, seq and newest events.

    ``token`` identifies the channel that asked; answer with it in ``stream_loaded``.
    """

    stream: str
    token: int


@dataclass(frozen=True, slots=True)
class LoadEvents:
    """Read the stream's events with seq > ``after`` (at most ``limit``)."""

    stream: str
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class Unfollow:
    """Nobody here follows the stream any more: leave its broker channel."""

    stream: str


Need = LoadStream | LoadEvents | Unfollow


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the database says about a stream when the hub starts following it."""

    status: str
    seq: int


# --- subscribers and channels ------------------------------------------------------------


class Subscriber:
    """One connection: an outlet and the streams it follows."""

    __slots__ = (
        "__weakref__",
        "active",
        "closed",
        "drafts",
        "encoding",
        "outlet",
        "refused",
        "streams",
    )

    def __init__(self, outlet: Outlet, encoding: Encoding, drafts: bool) -> None:
        self.outlet = outlet
        self.encoding = encoding
        # Editors may follow draft streams; readers may not.
        self.drafts = drafts
        # slug → True once live, False while waiting for its replay.
        self.streams: dict[str, bool] = {}
        self.closed: CloseCode | None = None
        # Whether a control message was written since the last heartbeat tick (events
        # count per channel: Channel.active).
        self.active = False
        self.refused = 0


@dataclass(eq=False)
class Channel:
    """The hub's view of one followed stream."""

    slug: str
    token: int
    window: deque[Event]
    status: str | None = None
    # None until the database answered LoadStream.
    head: int | None = None
    live: dict[Encoding, dict[Subscriber, None]] = field(
        default_factory=lambda: {e: {} for e in Encoding})
    # Subscribers waiting for their replay → the seq they resume after.
    waiting: dict[Subscriber, int | None] = field(default_factory=dict)
    # Live events ahead of head, held until the gap before them is read.
    early: dict[int, Event] = field(default_factory=dict)
    # ``after`` of each LoadEvents in flight.
    fetching: set[int] = field(default_factory=set)
    # Applied events not yet written to the live subscribers (see Hub._flush).
    pending: list[Event] = field(default_factory=list)
    # Whether events went out since the last heartbeat tick.
    active: bool = False
    # The broker may have lost events while this channel's first read was in flight:
    # read again once it has answered.
    resync: bool = False

    def empty(self) -> bool:
        return not self.waiting and not any(self.live.values())


class Hub:
    """Fan-out of committed events to subscribers, one per process."""

    def __init__(self, *, max_pending: int = 1 << 20, window: int = 256,
                 replay_limit: int = 1000, max_subscriptions: int = 100,
                 max_refused: int = 50) -> None:
        self.max_pending = max_pending
        self.window_size = window
        self.replay_limit = replay_limit
        self.max_subscriptions = max_subscriptions
        self.max_refused = max_refused
        self.channels: dict[str, Channel] = {}
        self.subscribers: dict[Subscriber, None] = {}
        self.evicted = 0
        self._needs: list[Need] = []
        self._dirty: list[Channel] = []
        self._tokens = 0

    # --- connections -------------------------------------------------------------------

    def connect(self, outlet: Outlet, encoding: Encoding, *, drafts: bool = False) -> Subscriber:
        """Register a new connection."""
        sub = Subscriber(outlet, encoding, drafts)
        self.subscribers[sub] = None
        return sub

    def disconnect(self, sub: Subscriber) -> list[Need]:
        """Forget a connection that has ended."""
        self.subscribers.pop(sub, None)
        for slug in list(sub.streams):
            self._leave(sub, slug)
        return self._take()

    def close(self, sub: Subscriber, code: CloseCode) -> list[Need]:
        """Close one connection with ``code``."""
        self._evict(sub, code)
        return self._take()

    def close_all(self, code: CloseCode) -> list[Need]:
        """Close every connection (shutdown)."""
        for sub in list(self.subscribers):
            self._evict(sub, code)
        return self._take()

    def heartbeat(self) -> None:
        """Send a heartbeat to every connection that was sent nothing since the last call."""
        channels = self.channels
        for sub in list(self.subscribers):
            if sub.closed is None and not sub.active and not any(
                    channels[slug].active for slug, live in sub.streams.items() if live):
                self._send(sub, protocol.HEARTBEAT, kind="heartbeat")
            sub.active = False
        for channel in channels.values():
            channel.active = False

    def refuse(self, sub: Subscriber, code: str, message: str, stream: str | None = None) -> None:
        """Answer a refused frame with an ``error``; too many refusals close the connection."""
        if sub.closed is not None:
            return
        self._send(sub, protocol.error(code, message, stream), kind="error")
        sub.refused += 1
        if sub.refused > self.max_refused:
            self._evict(sub, closecodes.TOO_MANY_SUBSCRIPTIONS
                        if code == "too_many_subscriptions" else closecodes.BAD_FRAMES)

    # --- subscriptions -----------------------------------------------------------------

    def subscribe(self, sub: Subscriber, slug: str, since: int | None) -> list[Need]:
        """Follow ``slug`` from ``since``; None means from now on."""
        if sub.closed is not None:
            return []
        if slug in sub.streams:
            self.refuse(sub, "already_subscribed", f"already subscribed to {slug!r}", slug)
            return []
        if len(sub.streams) >= self.max_subscriptions:
            self.refuse(sub, "too_many_subscriptions",
                        f"a connection may follow at most {self.max_subscriptions} streams", slug)
            return []
        channel = self.channels.get(slug)
        if channel is None:
            self._tokens += 1
            channel = self.channels[slug] = Channel(
                slug, self._tokens, deque(maxlen=self.window_size))
            self._needs.append(LoadStream(slug, channel.token))
        sub.streams[slug] = False
        channel.waiting[sub] = since
        if channel.head is not None:
            self._serve(channel, sub, None)
        return self._take()

    def unsubscribe(self, sub: Subscriber, slug: str) -> list[Need]:
        """Stop following ``slug``."""
        if sub.closed is not None:
            return []
        if slug not in sub.streams:
            self.refuse(sub, "not_subscribed", f"not subscribed to {slug!r}", slug)
            return []
        self._leave(sub, slug)
        self._send(sub, protocol.unsubscribed(slug), kind="unsubscribed")
        return self._take()

    # --- events in -----------------------------------------------------------------------

    def publish(self, event: Event) -> list[Need]:
        """A committed event arrived from the broker."""
        return self.publish_many((event,))

    def publish_many(self, events: Iterable[Event]) -> list[Need]:
        """Committed events arrived from the broker, in this order.

        Each live subscriber gets the stream's new events in one write: under a burst,
        one system call per reader for many events, not one per event.
        """
        touched: dict[Channel, None] = {}
        for event in events:
            channel = self.channels.get(event.stream)
            if channel is None:
                continue
            touched[channel] = None
            if channel.head is None or event.seq > channel.head + 1:
                channel.early[event.seq] = event
            elif event.seq == channel.head + 1:
                self._apply(channel, event)
                self._drain_early(channel, fetch=False)
        # A gap still open at the end of the batch (not merely out of order inside it)
        # is read from the database.
        for channel in touched:
            if channel.early and channel.head is not None:
                self._drain_early(channel)
        return self._take()

    def resync(self) -> list[Need]:
        """The broker may have lost events (it reconnected, or its queue overflowed):
        read every followed stream after its head, so that a gap at the end of a stream
        is repaired without waiting for a later event."""
        for channel in self.channels.values():
            if channel.head is None:
                channel.resync = True
            else:
                self._refetch(channel)
        return self._take()

    def stream_loaded(self, slug: str, token: int, info: StreamInfo | None,
                      events: Iterable[Event]) -> list[Need]:
        """The answer to LoadStream: status, seq and newest events (None: no such stream)."""
        channel = self.channels.get(slug)
        # A channel dropped and made again while the read was in flight asked anew: its
        # broker subscription may postdate this answer, so only its own answer counts.
        if channel is None or channel.token != token or channel.head is not None:
            return self._take()
        if info is None:
            for sub in list(channel.waiting):
                self._leave(sub, slug)
                self.refuse(sub, "stream_not_found", f"no stream {slug!r}", slug)
            return self._take()
        channel.status = info.status
        channel.head = info.seq
        channel.window.extend(e for e in events if e.seq <= info.seq)
        if channel.resync:
            channel.resync = False
            self._refetch(channel)
        self._drain_early(channel)
        for sub in list(channel.waiting):
            self._serve(channel, sub, None)
        return self._take()

    def events_loaded(self, slug: str, after: int, events: list[Event]) -> list[Need]:
        """The answer to LoadEvents: events with seq > ``after``, in order."""
        channel = self.channels.get(slug)
        if channel is None or channel.head is None:
            return self._take()
        channel.fetching.discard(after)
        for event in events:
            if event.seq == channel.head + 1:
                self._apply(channel, event)
        if len(events) >= self._fetch_limit and events[-1].seq == channel.head:
            # A full page: there may be more (a long broker outage).
            self._refetch(channel)
        self._drain_early(channel)
        for sub, since in list(channel.waiting.items()):
            if since is not None and since >= after:
                self._serve(channel, sub, events)
        return self._take()

    # --- internals -----------------------------------------------------------------------

    def _take(self) -> list[Need]:
        """End of a public call: write what was applied, and hand over the needs."""
        if self._dirty:
            self._flush()
        needs, self._needs = self._needs, []
        return needs

    def _serve(self, channel: Channel, sub: Subscriber, loaded: list[Event] | None) -> None:
        """Bring a waiting subscriber up to the channel's head, or ask for what it needs."""
        # The live subscribers get what was applied before anyone joins them, or the
        # newcomer would get those events twice (in its replay and in the flush).
        if self._dirty:
            self._flush()
        slug = channel.slug
        assert channel.head is not None
        head = channel.head
        if channel.status not in PUBLIC_STATUSES and not sub.drafts:
            self._leave(sub, slug)
            self.refuse(sub, "stream_not_found", f"no stream {slug!r}", slug)
            return
        since = channel.waiting[sub]
        if since is None:
            since = channel.waiting[sub] = head
        if since > head:
            # The client has seen an event this process has not: read the database once,
            # and if it really is ahead, its state belongs to another history.
            if loaded is None:
                self._fetch(channel, head)
            else:
                self._reset(channel, sub)
            return
        if head - since > self.replay_limit:
            self._reset(channel, sub)
            return
        first = channel.window[0].seq if channel.window else head + 1
        replay: list[Event] = []
        if since + 1 < first:
            older = [e for e in loaded or () if since < e.seq < first]
            if len(older) != first - since - 1:
                self._fetch(channel, since)
                return
            replay = older
        replay.extend(e for e in channel.window if e.seq > since)
        del channel.waiting[sub]
        sub.streams[slug] = True
        self._send(sub, protocol.subscribed(slug, head), kind="subscribed")
        encoding = sub.encoding
        for event in replay:
            if sub.closed is not None:
                return
            self._write(sub, event.encoded(encoding))
        if sub.closed is None:
            channel.live[encoding][sub] = None

    def _reset(self, channel: Channel, sub: Subscriber) -> None:
        assert channel.head is not None
        self._leave(sub, channel.slug)
        self._send(sub, protocol.reset(channel.slug, channel.head), kind="reset")

    @property
    def _fetch_limit(self) -> int:
        return self.replay_limit + self.window_size

    def _fetch(self, channel: Channel, after: int) -> None:
        """Ask for events after ``after`` unless a read that covers them is in flight."""
        if any(a <= after for a in channel.fetching):
            return
        channel.fetching.add(after)
        self._needs.append(LoadEvents(channel.slug, after, self._fetch_limit))

    def _refetch(self, channel: Channel) -> None:
        """Read after the head even if a read is in flight: it may have started too early."""
        assert channel.head is not None
        channel.fetching.add(channel.head)
        self._needs.append(LoadEvents(channel.slug, channel.head, self._fetch_limit))

    def _drain_early(self, channel: Channel, *, fetch: bool = True) -> None:
        """Apply held events that now follow the head; read the gap if one remains."""
        assert channel.head is not None
        early = channel.early
        while early:
            event = early.pop(channel.head + 1, None)
            if event is None:
                for seq in [s for s in early if s <= channel.head]:
                    del early[seq]
                if early and fetch:
                    self._fetch(channel, channel.head)
                return
            self._apply(channel, event)

    def _apply(self, channel: Channel, event: Event) -> None:
        """Advance the channel by one event; ``_flush`` fans it out."""
        channel.head = event.seq
        channel.window.append(event)
        if event.status is not None:
            channel.status = event.status
        if not channel.pending:
            self._dirty.append(channel)
        channel.pending.append(event)

    def _flush(self) -> None:
        """Write every channel's applied events to its live subscribers: the hot path.

        Each encoding's bytes are built once and the same object is offered to every
        subscriber; nothing here waits for any of them.
        """
        dirty, self._dirty = self._dirty, []
        limit = self.max_pending
        slow: list[Subscriber] = []
        for channel in dirty:
            events, channel.pending = channel.pending, []
            channel.active = True
            for encoding, subs in channel.live.items():
                if not subs:
                    continue
                if encoding is Encoding.MESSAGE and len(events) > 1:
                    for sub in subs:  # one message per event
                        write = sub.outlet.write
                        if max([write(e.payload) for e in events]) > limit:
                            slow.append(sub)
                    continue
                data = (events[0].encoded(encoding) if len(events) == 1
                        else b"".join(e.encoded(encoding) for e in events))
                for sub in subs:
                    if sub.outlet.write(data) > limit:
                        slow.append(sub)
        for sub in slow:
            self._evict(sub, closecodes.SLOW)

    def _send(self, sub: Subscriber, message: bytes, *, kind: str) -> None:
        """Write a control message in the subscriber's encoding."""
        if sub.encoding is Encoding.FRAME:
            data = protocol.ws_frame(message)
        elif sub.encoding is Encoding.SSE:
            data = (protocol.SSE_HEARTBEAT if kind == "heartbeat"
                    else protocol.sse_event(message, event=kind))
        else:
            data = message
        self._write(sub, data)

    def _write(self, sub: Subscriber, data: bytes) -> None:
        if sub.closed is not None:
            return
        sub.active = True
        if sub.outlet.write(data) > self.max_pending:
            self._evict(sub, closecodes.SLOW)

    def _leave(self, sub: Subscriber, slug: str) -> None:
        """Remove one subscription; drop the channel when nobody is left."""
        sub.streams.pop(slug, None)
        channel = self.channels.get(slug)
        if channel is None:
            return
        channel.waiting.pop(sub, None)
        channel.live[sub.encoding].pop(sub, None)
        if channel.empty():
            del self.channels[slug]
            self._needs.append(Unfollow(slug))

    def _evict(self, sub: Subscriber, code: CloseCode) -> None:
        if sub.closed is not None:
            return
        sub.closed = code
        if code is closecodes.SLOW:
            self.evicted += 1
        for slug in list(sub.streams):
            self._leave(sub, slug)
        self.subscribers.pop(sub, None)
        sub.outlet.close(code)
