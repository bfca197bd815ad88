"""The hub: streams → subscribers, encode once, byte-bounded outlets. No I/O.

The hub is a state machine driven by plain method calls from the transport layer
(``live/driver.py``): connections come and go, subscribe and unsubscribe; committed events
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

Replays carry each post's current state, as the event log does: applying an edit, pin
or deletion restates the window's earlier events of that post (``protocol.restate``, the
same bytes as the log), and events read from the database are brought up to the changes
applied after the read.

Fan-out encodes an event once per transport encoding and writes the same bytes to every
subscriber's outlet without waiting for any of them; events that arrive together
(``events_committed``) go out to each subscriber in one write. An outlet holding more than
``max_pending`` unsent bytes is closed with the SLOW code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import closecodes, protocol
from .closecodes import CloseCode
from .counters import HubCounters
from .needs import CancelLoad, Joined, LoadEvents, LoadStream, Need, StreamInfo, Unfollow
from .prepared import Encoding, Outlet, PreparedEvent
from .protocol import PUBLIC_STATUSES

# --- subscribers and channels ------------------------------------------------------------


class Subscriber:
    """One connection: an outlet and the streams it follows."""

    __slots__ = (
        "__weakref__",
        "active",
        "closed",
        "credential",
        "drafts",
        "encoding",
        "filters",
        "outlet",
        "refused",
        "streams",
    )

    def __init__(self, outlet: Outlet, encoding: Encoding, drafts: bool,
                 credential: Hashable | None = None) -> None:
        self.outlet = outlet
        self.encoding = encoding
        # Editors may follow draft streams; readers may not.
        self.drafts = drafts
        # What the connection authenticated with (opaque here): revoking it closes the
        # connection (``Hub.revoke``).
        self.credential = credential
        # slug → True once live, False while waiting for its replay.
        self.streams: dict[str, bool] = {}
        # slug → the posts it follows there, for its filtered subscriptions only.
        self.filters: dict[str, protocol.PostFilter] | None = None
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
    window: deque[PreparedEvent]
    status: str | None = None
    # None until the database answered LoadStream.
    head: int | None = None
    live: dict[Encoding, dict[Subscriber, None]] = field(
        default_factory=lambda: {e: {} for e in Encoding})
    # The live subscribers that follow only some posts, by encoding and filter: each
    # group's bytes are built once, as the unfiltered ones are.
    filtered: dict[tuple[Encoding, protocol.PostFilter], dict[Subscriber, None]] = field(
        default_factory=dict)
    # Subscribers waiting for their replay → the seq they resume after.
    waiting: dict[Subscriber, int | None] = field(default_factory=dict)
    # Live events ahead of head, held until the gap before them is read.
    early: dict[int, PreparedEvent] = field(default_factory=dict)
    # ``after`` of each LoadEvents in flight.
    fetching: set[int] = field(default_factory=set)
    # Applied events not yet written to the live subscribers (see Hub._flush).
    pending: list[PreparedEvent] = field(default_factory=list)
    # Whether events went out since the last heartbeat tick.
    active: bool = False
    # The broker may have lost events while this channel's first read was in flight:
    # read again once it has answered.
    resync: bool = False

    def empty(self) -> bool:
        return not self.waiting and not any(self.live.values()) and not self.filtered


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
        # Plain counters, read on a tick (the summary line) and when scraped (the
        # metrics): slow subscribers closed here, the rest in ``counters``.
        self.evicted = 0
        # Read by the metrics when scraped (core/counters.py).
        self.counters = HubCounters()
        self._needs: list[Need] = []
        self._dirty: list[Channel] = []
        self._tokens = 0

    # --- connections -------------------------------------------------------------------

    def connect(self, outlet: Outlet, encoding: Encoding, *, drafts: bool = False,
                credential: Hashable | None = None) -> Subscriber:
        """Register a new connection."""
        sub = Subscriber(outlet, encoding, drafts, credential)
        self.subscribers[sub] = None
        counters = self.counters
        counters.connected += 1
        counters.open[encoding] += 1
        return sub

    def credentials(self) -> set[Hashable]:
        """The credentials behind the open connections that have one."""
        return {sub.credential for sub in self.subscribers if sub.credential is not None}

    def revoke(self, credentials: Collection[Hashable]) -> list[Need]:
        """Close every connection opened with one of ``credentials`` (UNAUTHORIZED)."""
        for sub in list(self.subscribers):
            if sub.credential is not None and sub.credential in credentials:
                self._evict(sub, closecodes.UNAUTHORIZED)
        return self._take()

    def disconnect(self, sub: Subscriber) -> list[Need]:
        """Forget a connection that has ended."""
        if sub in self.subscribers:  # not closed by the hub: the peer went away
            del self.subscribers[sub]
            self.counters.open[sub.encoding] -= 1
            self.counters.left += 1
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

    def tell(self, subs: Iterable[Subscriber], message: bytes, *, kind: str) -> list[Need]:
        """Write one control message (presence, reader counts) to each of ``subs``,
        encoded once per encoding; not part of any stream's seq."""
        encoded: dict[Encoding, bytes] = {}
        for sub in subs:
            if sub.closed is not None:
                continue
            data = encoded.get(sub.encoding)
            if data is None:
                data = encoded[sub.encoding] = self._encode(sub.encoding, message, kind)
            self._write(sub, data)
        return self._take()

    def follower_counts(self, *, excluding: Iterable[Subscriber] = ()) -> dict[str, int]:
        """The connections following each stream (live, filtered or not, or waiting for
        their replay), those in ``excluding`` not counted."""
        counts = {slug: len(channel.waiting) + sum(map(len, channel.live.values()))
                  + sum(map(len, channel.filtered.values()))
                  for slug, channel in self.channels.items()}
        for sub in excluding:
            for slug in sub.streams:
                if slug in counts:
                    counts[slug] -= 1
        return counts

    # --- subscriptions -----------------------------------------------------------------

    def subscribe(self, sub: Subscriber, slug: str, since: int | None,
                  only: protocol.PostFilter = protocol.NO_FILTER) -> list[Need]:
        """Follow ``slug`` from ``since`` (None means from now on), the posts ``only``
        lets through in full and the others as stubs."""
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
        self.counters.subscribed += 1
        if only:
            if sub.filters is None:
                sub.filters = {}
            sub.filters[slug] = only
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

    def event_committed(self, event: PreparedEvent) -> list[Need]:
        """A committed event arrived (from the broker, or from this process)."""
        return self.events_committed((event,))

    def events_committed(self, events: Iterable[PreparedEvent]) -> list[Need]:
        """Committed events arrived (from the broker, or from this process), in this order.

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
                      events: Iterable[PreparedEvent]) -> list[Need]:
        """The answer to LoadStream: status, seq and newest events (None: no such stream)."""
        channel = self.channels.get(slug)
        # A channel dropped and made again while the read was in flight asked anew: its
        # broker subscription may postdate this answer, so only its own answer counts.
        if channel is None or channel.token != token or channel.head is not None:
            return self._take()
        if info is None:
            for sub in self._end_load(channel):
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
        if self.channels.get(slug) is channel and channel.empty():
            # Everyone left while the read was in flight.
            self._drop(channel)
        return self._take()

    def load_failed(self, slug: str, token: int) -> list[Need]:
        """LoadStream could not be answered (the database is away, or too many reads are
        queued): its waiting subscribers get an ``unavailable`` error and may retry."""
        channel = self.channels.get(slug)
        if channel is None or channel.token != token or channel.head is not None:
            return self._take()
        for sub in self._end_load(channel):
            self._unavailable(sub, slug)
        return self._take()

    def load_abandoned(self, slug: str, token: int) -> list[Need]:
        """The answer to CancelLoad when the read was stopped before it began."""
        channel = self.channels.get(slug)
        if channel is not None and channel.token == token and channel.head is None \
                and channel.empty():
            self._drop(channel)
        return self._take()

    def events_failed(self, slug: str, after: int) -> list[Need]:
        """A LoadEvents for waiting subscribers could not be answered: those it was to
        serve (and no other read in flight covers) get an ``unavailable`` error."""
        channel = self.channels.get(slug)
        if channel is None or channel.head is None:
            return self._take()
        channel.fetching.discard(after)
        covered = min(channel.fetching, default=None)
        for sub, since in list(channel.waiting.items()):
            if since is not None and since >= after and (covered is None or since < covered):
                self._leave(sub, slug)
                self._unavailable(sub, slug)
        return self._take()

    def events_loaded(self, slug: str, after: int, events: list[PreparedEvent]) -> list[Need]:
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
        if channel.waiting:
            self._restate_loaded(channel, events)
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

    def _serve(self, channel: Channel, sub: Subscriber, loaded: list[PreparedEvent] | None) -> None:
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
        replay: list[PreparedEvent] = []
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
        only = None if sub.filters is None else sub.filters.get(slug)
        for event in replay:
            if sub.closed is not None:
                return
            self._write(sub, (event if only is None else event.for_filter(only))
                        .encoded(encoding))
        if sub.closed is None:
            if only is None:
                channel.live[encoding][sub] = None
            else:
                channel.filtered.setdefault((encoding, only), {})[sub] = None
            if sub.drafts:
                self._needs.append(Joined(slug, sub))

    def _reset(self, channel: Channel, sub: Subscriber) -> None:
        assert channel.head is not None
        self._leave(sub, channel.slug)
        self.counters.resets += 1
        self._send(sub, protocol.reset(channel.slug, channel.head), kind="reset")

    @property
    def _fetch_limit(self) -> int:
        return self.replay_limit + self.window_size

    def _fetch(self, channel: Channel, after: int, *, repair: bool = False) -> None:
        """Ask for events after ``after`` unless a read that covers them is in flight."""
        if any(a <= after for a in channel.fetching):
            return
        channel.fetching.add(after)
        self._needs.append(LoadEvents(channel.slug, after, self._fetch_limit, repair))

    def _refetch(self, channel: Channel) -> None:
        """Read after the head even if a read is in flight: it may have started too early."""
        assert channel.head is not None
        channel.fetching.add(channel.head)
        self._needs.append(LoadEvents(channel.slug, channel.head, self._fetch_limit, True))

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
                    self._fetch(channel, channel.head, repair=True)
                return
            self._apply(channel, event)

    def _apply(self, channel: Channel, event: PreparedEvent) -> None:
        """Advance the channel by one event; ``_flush`` fans it out."""
        channel.head = event.seq
        channel.window.append(event)
        self.counters.events += 1
        if event.status is not None:
            channel.status = event.status
        if event.post_id is not None and event.op != "post.created":
            self._restate_window(channel, event)
        if not channel.pending:
            self._dirty.append(channel)
        channel.pending.append(event)

    # --- restating history ---------------------------------------------------------------
    # The window must serve what the event log serves: a post's events carry the post's
    # current state (see store/eventlog.py). Events are restated in place, so those applied but
    # not yet flushed go out restated too: a text deleted by the time it would be written
    # is not written.

    def _restate_window(self, channel: Channel, change: PreparedEvent) -> None:
        """Make the window's earlier events of ``change``'s post carry its new state."""
        post = change.post()
        if post is None:
            return
        post_id, seq = change.post_id, change.seq
        for event in channel.window:
            if event.post_id == post_id and event.seq < seq:
                event.restate(post)

    def _restate_loaded(self, channel: Channel, events: list[PreparedEvent]) -> None:
        """Bring events read from the database up to the post changes applied since.

        The read saw every change up to its newest event (a change commits with the
        restating of its post's history, in seq order), but not necessarily the changes
        applied here after that. Those are in the window: were they not, ``_serve``
        would find the window past the read and read again.
        """
        if not events:
            return
        newest = events[-1].seq
        posts: dict[int, dict[str, Any]] = {}
        for event in reversed(channel.window):
            if event.seq <= newest:
                break
            if (event.post_id is not None and event.op != "post.created"
                    and event.post_id not in posts):
                post = event.post()
                if post is not None:
                    posts[event.post_id] = post
        if posts:
            for event in events:
                if event.post_id in posts:
                    event.restate(posts[event.post_id])

    # --- fan-out -------------------------------------------------------------------------

    def _flush(self) -> None:
        """Write every channel's applied events to its live subscribers: the hot path.

        Each encoding's bytes are built once and the same object is offered to every
        subscriber; nothing here waits for any of them.
        """
        dirty, self._dirty = self._dirty, []
        limit = self.max_pending
        slow: list[Subscriber] = []
        frames = 0
        for channel in dirty:
            events, channel.pending = channel.pending, []
            channel.active = True
            for encoding, subs in channel.live.items():
                if subs:
                    frames += _fan_out(events, encoding, subs, limit, slow)
            for (encoding, only), subs in channel.filtered.items():
                frames += _fan_out([e.for_filter(only) for e in events], encoding, subs,
                                   limit, slow)
        self.counters.frames += frames
        for sub in slow:
            self._evict(sub, closecodes.SLOW)

    def _send(self, sub: Subscriber, message: bytes, *, kind: str) -> None:
        """Write a control message in the subscriber's encoding."""
        self._write(sub, self._encode(sub.encoding, message, kind))

    @staticmethod
    def _encode(encoding: Encoding, message: bytes, kind: str) -> bytes:
        if encoding is Encoding.FRAME:
            return protocol.ws_frame(message)
        if encoding is Encoding.SSE:
            return (protocol.SSE_HEARTBEAT if kind == "heartbeat"
                    else protocol.sse_event(message, event=kind))
        return message

    def _write(self, sub: Subscriber, data: bytes) -> None:
        if sub.closed is not None:
            return
        sub.active = True
        self.counters.frames += 1
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
        only = None if sub.filters is None else sub.filters.pop(slug, None)
        if only is not None:
            group = channel.filtered.get((sub.encoding, only))
            if group is not None:
                group.pop(sub, None)
                if not group:
                    del channel.filtered[(sub.encoding, only)]
        if not channel.empty():
            return
        if channel.head is None:
            # Its first read is in flight: keep the channel, so that whoever subscribes
            # next shares that read instead of starting another (a client that subscribes
            # and unsubscribes in a loop costs one read, not one per pair), and ask for
            # the read to be stopped if it has not begun.
            self._needs.append(CancelLoad(slug, channel.token))
            return
        self._drop(channel)

    def _end_load(self, channel: Channel) -> list[Subscriber]:
        """Drop a channel whose first read ended without a stream; its waiting
        subscribers, returned, no longer follow it."""
        waiting = list(channel.waiting)
        for sub in waiting:
            sub.streams.pop(channel.slug, None)
            if sub.filters is not None:
                sub.filters.pop(channel.slug, None)
        channel.waiting.clear()
        self._drop(channel)
        return waiting

    def _drop(self, channel: Channel) -> None:
        del self.channels[channel.slug]
        self._needs.append(Unfollow(channel.slug))

    def _unavailable(self, sub: Subscriber, slug: str) -> None:
        # Not the client's fault: unlike ``refuse``, it does not count towards closing
        # the connection.
        if sub.closed is None:
            self._send(sub, protocol.error(
                "unavailable", f"{slug!r} cannot be served right now; subscribe again "
                "shortly", slug), kind="error")

    def _evict(self, sub: Subscriber, code: CloseCode) -> None:
        if sub.closed is not None:
            return
        sub.closed = code
        if code is closecodes.SLOW:
            self.evicted += 1
        for slug in list(sub.streams):
            self._leave(sub, slug)
        counters = self.counters
        if sub in self.subscribers:
            del self.subscribers[sub]
            counters.open[sub.encoding] -= 1
        counters.closed[code.code] = counters.closed.get(code.code, 0) + 1
        sub.outlet.close(code)


def _fan_out(events: list[PreparedEvent], encoding: Encoding, subs: dict[Subscriber, None],
             limit: int, slow: list[Subscriber]) -> int:
    """Write ``events`` to every one of ``subs``: the same bytes object to each; returns
    the number of writes."""
    if encoding is Encoding.MESSAGE and len(events) > 1:
        for sub in subs:  # one message per event
            write = sub.outlet.write
            if max([write(e.payload) for e in events]) > limit:
                slow.append(sub)
        return len(subs) * len(events)
    data = (events[0].encoded(encoding) if len(events) == 1
            else b"".join(e.encoded(encoding) for e in events))
    for sub in subs:
        if sub.outlet.write(data) > limit:
            slow.append(sub)
    return len(subs)
