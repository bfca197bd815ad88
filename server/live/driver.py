"""The hub's I/O: broker messages in, database reads, heartbeats, and outlets.

``HubDriver`` owns the process's ``Hub`` and carries out what it asks for: it follows a
stream's broker channel before reading the stream (so that no event can fall between the
read and the subscription), reads events from the database with retries while the
database is away, and feeds every broker message to the hub. All hub calls happen on the
event loop's thread, so the hub needs no locks.

Routes see only the driver: ``connect``, ``subscribe``, ``unsubscribe``, ``presence``,
``disconnect`` for connections, ``publish`` for committed changes, and ``readers`` for a
stream's reader count; presence and reader counts are its ``Newsroom``'s
(``live/newsroom.py``). Events committed by this process reach
its own hub directly, then the broker for the other processes: local readers keep
receiving while the broker is away, and the broker's copy, arriving later, is dropped by
the hub's seq check. When the broker says it
may have lost messages (``Resync``), every followed stream is read again after its head.

Database work that clients can cause is bounded: at most ``max_loads`` reads run at once
and ``max_queued_loads`` more wait; a read for subscribers is tried a few times with
back-off and then given up (the subscribers get an ``unavailable`` error and retry), and a
read nobody waits for any more is cancelled before it begins. Only the reads that mend a
gap for live subscribers keep trying until the database answers.

Connections opened with a token or a desk session are checked against the database every
``credential_check_seconds``, and at once when any process announces a revocation on the
broker's control channel (``credentials_changed``): a revoked token, a disabled editor or
an ended session closes its connections with 4001 unauthorized.

What an operator reads: no line per connection (a reconnect storm of 100,000 readers
must not write 100,000 lines), but plain counters (``connects``, ``disconnects``, the
open ``ws`` and ``sse`` connections, events ``published`` and ``received``; the hub's
``evicted`` and ``resets``) that ``live/summary.py`` reads on a tick, and one throttled
WARNING per noteworthy event: a slow connection closed, resets sent, the database failing
and answering again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ..core import closecodes, protocol
from ..core.closecodes import CloseCode
from ..core.hub import Hub, Subscriber
from ..core.needs import CancelLoad, Joined, LoadEvents, LoadStream, Need, StreamInfo, Unfollow
from ..core.prepared import Encoding, Outlet, PreparedEvent
from ..core.presence import EditorRef
from ..core.protocol import NO_FILTER, PostFilter
from ..core.ratelimit import RateLimiter
from ..settings import Settings
from ..store import credentials, eventlog
from ..store.db import Database
from ..store.models import Event
from .brokers import Broker
from .brokers.base import BrokerClosed, BrokerUnavailable, Resync, stream_channel
from .newsroom import CHANNELS as NEWSROOM_CHANNELS
from .newsroom import Newsroom
from .summary import Summary

log = logging.getLogger("bulletin.live")
# The database's outages and returns, as the hub's reads see them.
database_log = logging.getLogger("bulletin.database")
T = TypeVar("T")

RETRY_FIRST = 0.1
# Broker messages fanned out in one pass at most (see Broker.next_messages).
PUMP_BATCH = 256
RETRY_MAX = 5.0
# Attempts at a read that subscribers wait for before they are told to retry.
LOAD_ATTEMPTS = 5
# The broker channel on which processes tell each other that access was taken back.
CONTROL_CHANNEL = credentials.CONTROL_CHANNEL


class LoadGaveUp(Exception):
    """A read for subscribers was not answered: too many queued, or failed too often."""


class _Load:
    """One database read the hub asked for, and whether it has begun reading."""

    __slots__ = ("reading", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.reading = False


class HubDriver:
    """One per process: the hub, fed from the broker and the database."""

    def __init__(self, *, settings: Settings, db: Database, broker: Broker) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        self.hub = Hub(
            max_pending=settings.send_queue_bytes, window=settings.window_events,
            replay_limit=settings.replay_limit, max_subscriptions=settings.max_subscriptions,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        # Broker subscribe/unsubscribe calls (op, channel, done) run one at a time, in the
        # order the hub asked.
        self._channel_ops: asyncio.Queue[tuple[str, str, asyncio.Future[None] | None]] = (
            asyncio.Queue())
        self._closing = False
        self._gate = asyncio.Semaphore(settings.max_loads)
        self._queued = 0
        # LoadStream reads in flight, by the channel token that asked.
        self._stream_loads: dict[int, _Load] = {}
        self._check_now = asyncio.Event()
        # Frames from all the WebSocket connections of one client address.
        self.frame_limiter = RateLimiter(rate=settings.address_frames_per_second,
                                         burst=settings.address_frame_burst)
        self.newsroom = Newsroom(hub=self.hub, broker=broker, settings=settings, run=self.run)
        # Plain counters (per connection or per batch, never per frame), read on a tick by
        # the summary line and when scraped by the metrics: connections opened and closed
        # and open now by transport, events this process published and received from the
        # broker, reads that mended a gap and the events they brought, broker Resyncs.
        self.connects = 0
        self.disconnects = 0
        self.ws = 0
        self.sse = 0
        self.published = 0
        self.received = 0
        self.gap_reads = 0
        self.repaired = 0
        self.resyncs = 0
        self._resets_told = 0
        # When the database first failed a read, while it keeps failing.
        self._database_down: float | None = None
        # Called with each event's seconds from its commit to the end of its fan-out here,
        # when the metrics are on (None: not measured).
        self.observe_latency: Callable[[float], None] | None = None

    async def start(self) -> None:
        """Start reading the broker, sending heartbeats and checking credentials."""
        for channel in (CONTROL_CHANNEL, *NEWSROOM_CHANNELS):
            self._channel_ops.put_nowait(("subscribe", channel, None))
        for coro in (self._pump(), self._ticker(), self._channel_worker(),
                     self._credential_checker(), self.newsroom.run(),
                     Summary(self).run(self.settings.log_summary_seconds)):
            self._spawn(coro)

    async def credentials_changed(self) -> None:
        """Access was taken back (a token revoked, an editor disabled, a session ended):
        check the open connections of this process now, and tell every other process."""
        self._check_now.set()
        try:
            await self.broker.publish(CONTROL_CHANNEL, credentials.CHANGED)
        except BrokerUnavailable as exc:
            log.warning("could not announce a revocation to other processes (%s); they "
                        "check within %.0f s", exc, self.settings.credential_check_seconds)
        except Exception as exc:
            log.warning("could not announce a revocation to other processes: %r", exc)

    async def stop(self) -> None:
        """Close every connection with going-away and stop the background tasks."""
        self.close_all(closecodes.GOING_AWAY)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close_all(self, code: CloseCode) -> None:
        """Close every connection (the server is shutting down)."""
        self._closing = True
        self.hub.close_all(code)

    # --- what routes call ---------------------------------------------------------------

    def connect(self, outlet: Outlet, encoding: Encoding, *, drafts: bool = False,
                credential: Hashable | None = None,
                editor: EditorRef | None = None) -> Subscriber:
        """A new connection: its bytes go to ``outlet`` in ``encoding``; ``drafts`` lets
        it follow draft streams (an editor's: not counted as a reader); revoking
        ``credential`` closes it; ``editor`` lets it send and receive presence."""
        sub = self.hub.connect(outlet, encoding, drafts=drafts, credential=credential)
        self.newsroom.connected(sub, editor)
        self.connects += 1
        if encoding is Encoding.SSE:
            self.sse += 1
        else:
            self.ws += 1
        return sub

    def subscribe(self, sub: Subscriber, slug: str, since: int | None,
                  only: PostFilter = NO_FILTER) -> None:
        """Follow a stream from after ``since`` (None: from now), only the posts ``only``
        lets through in full."""
        self.run(self.hub.subscribe(sub, slug, since, only))

    def unsubscribe(self, sub: Subscriber, slug: str) -> None:
        """Stop following a stream (and end the connection's presence there)."""
        self.run(self.hub.unsubscribe(sub, slug))
        self.newsroom.left(sub, slug)

    def presence(self, sub: Subscriber, frame: protocol.Presence) -> None:
        """An editor says what they are doing on a stream (a reader is refused)."""
        self.newsroom.declare(sub, frame)

    def readers(self, slugs: Iterable[str]) -> dict[str, int]:
        """Readers of each stream on every process, within ``reader_count_seconds``."""
        return self.newsroom.readers(slugs)

    async def queue_changed(self, slugs: Iterable[str]) -> None:
        """The posts that wait on these streams changed (committed): tell the editors
        following them, on every process; a broker failure is logged, never raised."""
        await self.newsroom.queue_changed(slugs)

    def refuse(self, sub: Subscriber, code: str, message: str, stream: str | None = None) -> None:
        """Answer a frame the connection should not have sent with an error frame."""
        self.hub.refuse(sub, code, message, stream)

    def close(self, sub: Subscriber, code: CloseCode) -> None:
        """Close a connection with ``code``."""
        self.run(self.hub.close(sub, code))

    def disconnect(self, sub: Subscriber) -> None:
        """The connection has gone."""
        self.run(self.hub.disconnect(sub))
        self.newsroom.gone(sub)
        self.disconnects += 1
        if sub.encoding is Encoding.SSE:
            self.sse -= 1
        else:
            self.ws -= 1
        if sub.closed is closecodes.SLOW:
            log.warning("closed a slow %s connection: more than %d bytes unsent; it resumes "
                        "when it reconnects", "SSE" if sub.encoding is Encoding.SSE
                        else "WebSocket", self.settings.send_queue_bytes)

    async def publish(self, slug: str, events: Sequence[Event]) -> None:
        """Send committed events to this process's readers and, through the broker, to
        every other process; a broker failure is logged, never raised.

        The events are already in the database, which is the source of truth: a process
        that misses one here sees the gap in seq, or gets a Resync from its broker, and
        reads it from there.
        """
        if not events:
            return
        self.published += len(events)
        self._deliver(event.payload for event in events)
        for event in events:
            try:
                await self.broker.publish(stream_channel(slug), event.payload)
            except BrokerUnavailable as exc:
                log.warning("could not publish %s seq %s: %s", slug, event.seq, exc)
            except Exception:
                log.exception("could not publish %s seq %s to the broker", slug, event.seq)

    # --- carrying out the hub's needs ---------------------------------------------------

    def run(self, needs: Iterable[Need]) -> None:
        """Carry out what the hub asked for, in the background."""
        if self.hub.counters.resets != self._resets_told:
            self._tell_resets()
        for need in needs:
            if self._closing:
                return
            if isinstance(need, LoadStream):
                load = self._stream_loads[need.token] = _Load()
                load.task = self._spawn(self._load_stream(need, load))
            elif isinstance(need, LoadEvents):
                self._spawn(self._load_events(need, _Load()))
            elif isinstance(need, CancelLoad):
                pending = self._stream_loads.get(need.token)
                if pending is not None and not pending.reading and pending.task is not None:
                    pending.task.cancel()
                    del self._stream_loads[need.token]
                    self.run(self.hub.load_abandoned(need.stream, need.token))
            elif isinstance(need, Unfollow):
                self._channel_ops.put_nowait(("unsubscribe", stream_channel(need.stream), None))
            elif isinstance(need, Joined):
                assert isinstance(need.subscriber, Subscriber)
                self.newsroom.joined(need.subscriber, need.stream)

    def _tell_resets(self) -> None:
        resets = self.hub.counters.resets
        count, self._resets_told = resets - self._resets_told, resets
        log.warning("sent reset to %d subscription(s) that resumed from further back than "
                    "%d events or from ahead of the stream; they reload it over HTTP",
                    count, self.settings.replay_limit)

    def _deliver(self, payloads: Iterable[str]) -> None:
        """Hand events this process committed to its own hub, without the broker."""
        if self._closing:
            return
        events = []
        for payload in payloads:
            try:
                events.append(PreparedEvent.from_payload(payload))
            except (ValueError, KeyError, TypeError):
                log.error("could not deliver a malformed event locally")
        fresh = self._fresh(events) if self.observe_latency is not None else None
        self.run(self.hub.events_committed(events))
        if fresh:
            self._measure(fresh)

    def _fresh(self, events: list[PreparedEvent]) -> list[PreparedEvent]:
        """The events the hub will fan out now: followed, and not already applied (the
        broker's copy of an event this process committed is not)."""
        channels = self.hub.channels
        fresh = []
        for event in events:
            channel = channels.get(event.stream)
            if channel is not None and channel.head is not None and event.seq > channel.head:
                fresh.append(event)
        return fresh

    def _measure(self, events: list[PreparedEvent]) -> None:
        """Report each event's time from its commit to now (its fan-out is done)."""
        assert self.observe_latency is not None
        now = time.time()
        for event in events:
            if event.at is not None:
                try:
                    written = datetime.fromisoformat(event.at).timestamp()
                except ValueError:
                    continue
                self.observe_latency(max(0.0, now - written))

    # --- background work -------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pump(self) -> None:
        while True:
            try:
                messages = await self.broker.next_messages(PUMP_BATCH)
            except BrokerClosed:
                return
            events: list[PreparedEvent] = []
            resync = False
            for message in messages:
                if isinstance(message, Resync):
                    resync = True
                    continue
                if message.channel == CONTROL_CHANNEL:
                    self._check_now.set()
                    continue
                if message.channel in NEWSROOM_CHANNELS:
                    self.newsroom.received(message)
                    continue
                try:
                    events.append(PreparedEvent.from_payload(message.payload))
                except (ValueError, KeyError, TypeError):
                    log.error("dropped a malformed broker message on %s", message.channel)
            self.received += len(events)
            fresh = self._fresh(events) if self.observe_latency is not None else None
            self.run(self.hub.events_committed(events))
            if fresh:
                self._measure(fresh)
            if resync:
                self.resyncs += 1
                self.run(self.hub.resync())
                # A revocation announced meanwhile may be among what was lost.
                self._check_now.set()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            self.hub.heartbeat()

    async def _channel_worker(self) -> None:
        while True:
            op, channel, done = await self._channel_ops.get()
            delay = RETRY_FIRST
            while True:
                try:
                    if op == "subscribe":
                        await self.broker.subscribe(channel)
                    else:
                        await self.broker.unsubscribe(channel)
                    break
                except BrokerClosed:
                    return
                except Exception as exc:
                    log.warning("broker %s %s failed (%r); retrying in %.1fs", op, channel, exc,
                                delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            if done is not None and not done.done():
                done.set_result(None)

    async def _load_stream(self, need: LoadStream, load: _Load) -> None:
        try:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._channel_ops.put_nowait(("subscribe", stream_channel(need.stream), done))
            await done
            window = self.settings.window_events

            async def read() -> tuple[StreamInfo | None, list[PreparedEvent]]:
                async with self.db.read() as session:
                    found = await eventlog.stream_head(session, slug=need.stream, window=window)
                if found is None:
                    return None, []
                stream, payloads = found
                return (StreamInfo(stream.status, stream.seq),
                        [PreparedEvent.from_payload(p) for p in payloads])

            try:
                info, events = await self._bounded(
                    f"reading stream {need.stream}", read, load, attempts=LOAD_ATTEMPTS)
            except LoadGaveUp:
                self.run(self.hub.load_failed(need.stream, need.token))
                return
        finally:
            if self._stream_loads.get(need.token) is load:
                del self._stream_loads[need.token]
        self.run(self.hub.stream_loaded(need.stream, need.token, info, events))

    async def _load_events(self, need: LoadEvents, load: _Load) -> None:
        async def read() -> list[PreparedEvent]:
            async with self.db.read() as session:
                payloads = await eventlog.events_after(
                    session, slug=need.stream, since=need.after, limit=need.limit)
            return [PreparedEvent.from_payload(p) for p in payloads]

        try:
            events = await self._bounded(
                f"reading events of {need.stream}", read, load,
                attempts=None if need.repair else LOAD_ATTEMPTS)
        except LoadGaveUp:
            self.run(self.hub.events_failed(need.stream, need.after))
            return
        if need.repair:
            self.gap_reads += 1
            self.repaired += len(events)
        self.run(self.hub.events_loaded(need.stream, need.after, events))

    async def _bounded(self, what: str, read: Callable[[], Awaitable[T]], load: _Load, *,
                       attempts: int | None) -> T:
        """Run ``read`` under the process's bound on reads, retrying with back-off.

        ``attempts`` None: until it succeeds (the database may be away for a while), and
        never refused for the queue. Otherwise LoadGaveUp once the queue is full or after
        that many failures.
        """
        delay = RETRY_FIRST
        attempt = 0
        while True:
            attempt += 1
            if attempts is not None and self._queued >= self.settings.max_queued_loads:
                log.warning("too many database reads queued (%d); refused %s",
                            self._queued, what)
                raise LoadGaveUp(what)
            self._queued += 1
            try:
                await self._gate.acquire()
            finally:
                self._queued -= 1
            try:
                load.reading = True
                result = await read()
            except Exception as exc:
                failure = exc
                self._database_failed(exc)
            else:
                if self._database_down is not None:
                    self._database_back()
                return result
            finally:
                load.reading = False
                self._gate.release()
            if attempts is not None and attempt >= attempts:
                log.warning("%s failed %d times (%r); giving up", what, attempt, failure)
                raise LoadGaveUp(what)
            log.warning("%s failed (%r); retrying in %.1fs", what, failure, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _database_failed(self, exc: Exception) -> None:
        if self._database_down is None:
            self._database_down = asyncio.get_running_loop().time()
            database_log.warning("the database failed a read (%r); live readers are served "
                                 "from memory and reads are retried; a line says when it "
                                 "answers again", exc)

    def _database_back(self) -> None:
        assert self._database_down is not None
        down = asyncio.get_running_loop().time() - self._database_down
        self._database_down = None
        database_log.warning("the database answers again, after %.1f s", down)

    async def _credential_checker(self) -> None:
        """Close connections whose token or session no longer holds."""
        while True:
            try:
                await asyncio.wait_for(self._check_now.wait(),
                                       self.settings.credential_check_seconds)
            except TimeoutError:
                pass
            self._check_now.clear()
            held = self.hub.credentials()
            if not held:
                continue
            try:
                async with self.db.read() as session:
                    valid = await credentials.still_valid(
                        session, held, settings=self.settings)
            except Exception as exc:
                log.warning("could not check the credentials of open connections (%r)", exc)
                continue
            # Connections opened while the query ran are checked next time.
            self.run(self.hub.revoke(held - valid))


class QueueOutlet:
    """An outlet for transports that must be awaited (ASGI sends): a byte-counted queue
    drained by the connection's own task."""

    def __init__(self) -> None:
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self._wakeup = asyncio.Event()
        self.closed: CloseCode | None = None

    def write(self, data: bytes) -> int:
        """Queue ``data``; never waits. Returns the bytes queued and not yet sent."""
        if self.closed is None:
            self._queue.append(data)
            self._bytes += len(data)
            self._wakeup.set()
        return self._bytes

    def close(self, code: CloseCode) -> None:
        """Send what is queued, then close."""
        if self.closed is None:
            self.closed = code
            self._wakeup.set()

    async def next_batch(self) -> list[bytes]:
        """Wait for queued data; an empty list once closed and drained."""
        while not self._queue:
            if self.closed is not None:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def sent(self, batch: list[bytes]) -> None:
        """Account for a batch that was handed to the transport."""
        self._bytes -= sum(map(len, batch))
