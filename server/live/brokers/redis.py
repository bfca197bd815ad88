"""The Redis broker: events between processes and machines over Redis pub/sub.

``redis://[:password@]host[:port][/db][?prefix=bulletin:]`` (``rediss://`` for TLS).
Every channel name is prefixed (default ``bulletin:``), so that several sites, or several
test runs, can share one Redis without hearing each other.

One dedicated connection subscribes; it is read by one task that hands messages to a
bounded queue. Publishing goes through a small pool of other connections. Redis pub/sub
is at most once: while the subscriber connection is down, whatever is published is lost
to this process. So the reader reconnects with jittered back-off, subscribes to every
channel again, and only then hands out a ``Resync``: the consumer re-reads the streams it
follows from the database, which holds every event committed before that moment, and the
messages after the ``Resync`` bring the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .base import BrokerClosed, BrokerMessage, BrokerState, BrokerUnavailable, Resync
from .inbox import Inbox

log = logging.getLogger("bulletin.broker")

DEFAULT_PREFIX = "bulletin:"
DEFAULT_QUEUE_SIZE = 10_000
CONNECT_SECONDS = 2.0
PUBLISH_SECONDS = 2.0
# Back-off between reconnection attempts: doubling from the first to the last, jittered.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
# The subscriber connection is pinged when it has been quiet this long, and given up as
# dead when nothing (not even the pong) arrived for DEAD_SECONDS.
PING_SECONDS = 5.0
DEAD_SECONDS = 15.0

_FAILURES = (RedisError, OSError, EOFError)


def split_url(url: str) -> tuple[str, str]:
    """The Redis URL without Bulletin's ``prefix`` parameter, and the prefix."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for name, value in query if name == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisBroker:
    """Redis pub/sub with reconnection and an explicit ``Resync`` after every gap."""

    def __init__(self, url: str, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.url, self.prefix = split_url(url)
        self._state = BrokerState.CLOSED
        self._reconnects = 0
        # Channels (without prefix) someone here follows: subscribed again on reconnect.
        self._channels: set[str] = set()
        # The subscriber connection, once its SUBSCRIBE for every channel was sent.
        self._conn: AbstractConnection | None = None
        # Prefixed channels whose SUBSCRIBE is not confirmed yet, and who waits for it.
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        # After a (re)connection: channels to confirm before the Resync is handed out.
        self._resubscribing: set[bytes] | None = None
        self._inbox = Inbox(queue_size)
        # The newest payload per channel that could not be published: sent again once the
        # broker is back, so that other processes see the gap even in a quiet stream.
        self._unsent: dict[str, str] = {}
        self._client: Redis | None = None
        self._runner: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._subscriber_pool: ConnectionPool | None = None
        self._reading: asyncio.Task[None] | None = None
        self._last_seen = 0.0

    @property
    def state(self) -> BrokerState:
        """CONNECTED once every subscription is active; RECONNECTING while it is not."""
        return self._state

    # --- lifecycle -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Start the subscriber; wait briefly for the first connection, never fail."""
        if self._state is not BrokerState.CLOSED:
            raise RuntimeError(f"expected a closed broker, got {self._state.value}")
        self._inbox.reopen()
        self._state = BrokerState.RECONNECTING
        self._client = Redis(connection_pool=ConnectionPool.from_url(
            self.url, socket_timeout=PUBLISH_SECONDS, socket_connect_timeout=CONNECT_SECONDS,
            # One retry: a pooled connection may be stale after Redis restarted.
            retry=Retry(NoBackoff(), 1), max_connections=32))
        # Only used to make the subscriber's connection: no timeout on its reads (it waits
        # for pushes), no retries inside redis-py (the reader reconnects and resyncs).
        self._subscriber_pool = ConnectionPool.from_url(
            self.url, socket_timeout=None, socket_connect_timeout=CONNECT_SECONDS,
            retry=Retry(NoBackoff(), 0))
        self._runner = asyncio.get_running_loop().create_task(self._run())
        # Let the first attempt finish, so that a healthy Redis is CONNECTED at startup.
        for _ in range(int(CONNECT_SECONDS / 0.01)):
            if self._state is BrokerState.CONNECTED or self._runner.done():
                break
            await asyncio.sleep(0.01)
        if self._state is not BrokerState.CONNECTED:
            log.warning("the broker at %s is unreachable; retrying in the background",
                        self._shown())

    async def disconnect(self) -> None:
        """Close both sides; a waiting ``next_messages`` raises ``BrokerClosed``."""
        self._state = BrokerState.CLOSED
        for task in (self._runner, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, *_FAILURES):
                    await task
        self._runner = self._flusher = None
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None
        self._channels.clear()
        self._wake_waiters()
        self._inbox.close()

    # --- subscriptions -------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Follow ``channel``; returns once Redis confirmed it, or at once while reconnecting."""
        self._channels.add(channel)
        conn = self._conn
        if conn is None:
            return  # subscribed on reconnection, before the Resync
        name = (self.prefix + channel).encode()
        confirmed = self._resubscribing is None
        waiter: asyncio.Future[None] | None = None
        if confirmed:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(name, []).append(waiter)
        else:
            assert self._resubscribing is not None
            self._resubscribing.add(name)
        try:
            await conn.send_command("SUBSCRIBE", name)
        except _FAILURES:
            return  # the reader sees the connection fail; the Resync covers this channel
        if waiter is not None:
            await waiter

    async def unsubscribe(self, channel: str) -> None:
        """Stop following ``channel``."""
        self._channels.discard(channel)
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(*_FAILURES):
                await conn.send_command("UNSUBSCRIBE", self.prefix + channel)

    # --- messages ------------------------------------------------------------------------

    async def publish(self, channel: str, payload: str) -> None:
        """PUBLISH on the prefixed channel; raises BrokerUnavailable while Redis is away."""
        if self._state is BrokerState.CLOSED or self._client is None:
            raise BrokerClosed("broker is not connected")
        if self._state is not BrokerState.CONNECTED:
            self._unsent[channel] = payload
            raise BrokerUnavailable(f"the broker at {self._shown()} is reconnecting")
        try:
            await self._client.publish(self.prefix + channel, payload)
        except _FAILURES as exc:
            self._unsent[channel] = payload
            # Redis is probably away, though the quiet subscriber connection cannot tell
            # yet (a silent network takes DEAD_SECONDS to notice): reconnect it now, so that
            # later posts fail fast and a Resync follows once Redis answers again.
            if self._reading is not None and self._state is BrokerState.CONNECTED:
                self._reading.cancel()
            raise BrokerUnavailable(f"cannot publish to {self._shown()}: {exc}") from exc
        if self._unsent:
            self._flush_unsent()

    async def next_messages(self, limit: int) -> list[BrokerMessage | Resync]:
        """The next message (or Resync), and those already queued after it."""
        return await self._inbox.take(limit, closed=self._state is BrokerState.CLOSED)

    @property
    def dropped(self) -> int:
        """Messages dropped because the consumer was a whole queue behind."""
        return self._inbox.dropped

    @property
    def reconnects(self) -> int:
        """Times the subscriber connection was made again after it was lost."""
        return self._reconnects

    # --- the subscriber connection -------------------------------------------------------

    async def _run(self) -> None:
        """Connect, subscribe, read until the connection fails; again, with back-off."""
        delay = BACKOFF_FIRST
        failures = 0
        connected = False
        while True:
            try:
                conn = await self._open()
            except _FAILURES as exc:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("cannot reach the broker at %s (attempt %d): %s",
                                self._shown(), failures, exc)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if failures:
                log.warning("reconnected to the broker at %s after %d attempts",
                            self._shown(), failures)
            delay, failures = BACKOFF_FIRST, 0
            if connected:
                self._reconnects += 1
            connected = True
            try:
                await self._read(conn)
            except _FAILURES as exc:
                log.warning("lost the broker connection to %s: %s; reconnecting",
                            self._shown(), exc or type(exc).__name__)
            finally:
                self._conn = None
                self._resubscribing = None
                if self._state is not BrokerState.CLOSED:
                    self._state = BrokerState.RECONNECTING
                self._wake_waiters()
                with contextlib.suppress(*_FAILURES):
                    await conn.disconnect(nowait=True)

    async def _open(self) -> AbstractConnection:
        assert self._subscriber_pool is not None
        # redis-py leaves make_connection() and connect() untyped.
        conn: Any = self._subscriber_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.connect()
            names = [(self.prefix + channel).encode() for channel in self._channels]
            self._resubscribing = set(names)
            self._conn = conn
            if names:
                await conn.send_command("SUBSCRIBE", *names)
            else:
                # Nothing was followed, so nothing can have been missed: no Resync.
                self._resubscribing = None
                self._state = BrokerState.CONNECTED
                if self._unsent:
                    self._flush_unsent()
        except BaseException:
            self._conn = None
            self._resubscribing = None
            with contextlib.suppress(*_FAILURES):
                await conn.disconnect(nowait=True)
            raise
        result: AbstractConnection = conn
        return result

    def _resubscribed(self) -> None:
        """Every channel is subscribed again: from here on nothing is lost."""
        self._resubscribing = None
        self._state = BrokerState.CONNECTED
        self._inbox.offer(Resync())
        if self._unsent:
            self._flush_unsent()

    async def _read(self, conn: AbstractConnection) -> None:
        """Read pushes until the connection fails; ping it when quiet, drop it when dead."""
        loop = asyncio.get_running_loop()
        self._last_seen = loop.time()
        reading = self._reading = loop.create_task(self._receive(conn))
        try:
            while True:
                await asyncio.wait((reading,), timeout=PING_SECONDS)
                if reading.cancelled():
                    raise ConnectionError("publishing failed: checking the connection")
                if reading.done():
                    reading.result()  # raises what ended it
                    raise ConnectionError("the connection closed")
                quiet = loop.time() - self._last_seen
                if quiet >= DEAD_SECONDS:
                    raise ConnectionError(f"no answer for {quiet:.0f} s")
                if quiet >= PING_SECONDS:
                    await conn.send_command("PING")
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_FAILURES):
                await reading

    async def _receive(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        prefix = self.prefix.encode()
        cut = len(prefix)
        channels = self._channels
        while True:
            response = await conn.read_response(push_request=True)
            self._last_seen = loop.time()
            if not isinstance(response, list) or len(response) < 2:
                continue
            kind = response[0]
            if kind == b"message":
                name = response[1]
                channel = name[cut:].decode() if name.startswith(prefix) else None
                if channel in channels:
                    self._inbox.offer(BrokerMessage(channel, response[2].decode()))
            elif kind == b"subscribe":
                name = response[1]
                for waiter in self._waiters.pop(name, ()):
                    if not waiter.done():
                        waiter.set_result(None)
                pending = self._resubscribing
                if pending is not None:
                    pending.discard(name)
                    if not pending:
                        self._resubscribed()

    def _wake_waiters(self) -> None:
        # A subscribe that was not confirmed before the connection went is covered by the
        # Resync that follows the reconnection.
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for waiter in futures:
                if not waiter.done():
                    waiter.set_result(None)

    # --- unsent messages -----------------------------------------------------------------

    def _flush_unsent(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._send_unsent())

    async def _send_unsent(self) -> None:
        unsent, self._unsent = self._unsent, {}
        for channel, payload in unsent.items():
            try:
                if self._client is None:
                    return
                await self._client.publish(self.prefix + channel, payload)
            except _FAILURES:
                self._unsent.setdefault(channel, payload)

    def _shown(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        return f"{parts.scheme}://{host}:{parts.port or 6379}"
