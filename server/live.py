"""The hub's I/O: broker messages in, database reads, heartbeats, and outlets.

``Live`` owns the process's ``Hub`` and carries out what it asks for: it follows a
stream's broker channel before reading the stream (so that no event can fall between the
read and the subscription), reads events from the database with retries while the
database is away, and feeds every broker message to the hub. All hub calls happen on the
event loop's thread, so the hub needs no locks.

Events committed by this process reach its own hub directly (``deliver``), not only
through the broker: local readers keep receiving while the broker is away, and the
broker's copy, arriving later, is dropped by the hub's seq check. When the broker says it
may have lost messages (``Resync``), every followed stream is read again after its head.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from . import closecodes, store
from .brokers import Broker
from .brokers.base import BrokerClosed, Resync
from .closecodes import CloseCode
from .db import Database
from .hub import Event, Hub, LoadEvents, LoadStream, Need, StreamInfo, Unfollow
from .services import channel_for
from .settings import Settings

log = logging.getLogger("bulletin.live")
T = TypeVar("T")

RETRY_FIRST = 0.1
# Broker messages fanned out in one pass at most (see Broker.next_messages).
PUMP_BATCH = 256
RETRY_MAX = 5.0


class Live:
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
        # Broker subscribe/unsubscribe calls run one at a time, in the order the hub asked.
        self._channel_ops: asyncio.Queue[tuple[str, str, asyncio.Future[None] | None]] = (
            asyncio.Queue())
        self._closing = False

    async def start(self) -> None:
        """Start reading the broker and sending heartbeats."""
        for coro in (self._pump(), self._ticker(), self._channel_worker()):
            self._spawn(coro)

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

    def run(self, needs: Iterable[Need]) -> None:
        """Carry out what the hub asked for, in the background."""
        for need in needs:
            if self._closing:
                return
            if isinstance(need, LoadStream):
                self._spawn(self._load_stream(need))
            elif isinstance(need, LoadEvents):
                self._spawn(self._load_events(need))
            elif isinstance(need, Unfollow):
                self._channel_ops.put_nowait(("unsubscribe", need.stream, None))

    def deliver(self, payloads: Iterable[str]) -> None:
        """Hand events this process committed to its own hub, without the broker."""
        if self._closing:
            return
        events = []
        for payload in payloads:
            try:
                events.append(Event.from_payload(payload))
            except (ValueError, KeyError, TypeError):
                log.error("could not deliver a malformed event locally")
        self.run(self.hub.publish_many(events))

    # --- background work -------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self) -> None:
        while True:
            try:
                messages = await self.broker.next_messages(PUMP_BATCH)
            except BrokerClosed:
                return
            events: list[Event] = []
            resync = False
            for message in messages:
                if isinstance(message, Resync):
                    resync = True
                    continue
                try:
                    events.append(Event.from_payload(message.payload))
                except (ValueError, KeyError, TypeError):
                    log.error("dropped a malformed broker message on %s", message.channel)
            self.run(self.hub.publish_many(events))
            if resync:
                self.run(self.hub.resync())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            self.hub.heartbeat()

    async def _channel_worker(self) -> None:
        while True:
            op, slug, done = await self._channel_ops.get()
            delay = RETRY_FIRST
            while True:
                try:
                    if op == "subscribe":
                        await self.broker.subscribe(channel_for(slug))
                    else:
                        await self.broker.unsubscribe(channel_for(slug))
                    break
                except BrokerClosed:
                    return
                except Exception:
                    log.warning("broker %s %s failed; retrying in %.1fs", op, slug, delay,
                                exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            if done is not None and not done.done():
                done.set_result(None)

    async def _load_stream(self, need: LoadStream) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._channel_ops.put_nowait(("subscribe", need.stream, done))
        await done
        window = self.settings.window_events

        async def read() -> tuple[StreamInfo | None, list[Event]]:
            async with self.db.read() as session:
                found = await store.stream_head(session, slug=need.stream, window=window)
            if found is None:
                return None, []
            stream, payloads = found
            return StreamInfo(stream.status, stream.seq), [Event.from_payload(p) for p in payloads]

        info, events = await self._retrying(f"reading stream {need.stream}", read)
        self.run(self.hub.stream_loaded(need.stream, need.token, info, events))

    async def _load_events(self, need: LoadEvents) -> None:
        async def read() -> list[Event]:
            async with self.db.read() as session:
                payloads = await store.events_after(
                    session, slug=need.stream, since=need.after, limit=need.limit)
            return [Event.from_payload(p) for p in payloads]

        events = await self._retrying(f"reading events of {need.stream}", read)
        self.run(self.hub.events_loaded(need.stream, need.after, events))

    async def _retrying(self, what: str, read: Callable[[], Awaitable[T]]) -> T:
        """Run ``read`` until it succeeds: the database may be away for a while."""
        delay = RETRY_FIRST
        while True:
            try:
                return await read()
            except Exception:
                log.warning("%s failed; retrying in %.1fs", what, delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)


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
