"""uvicorn's sans-I/O WebSocket protocol, plus a way to write pre-built frames.

An ASGI app can only send a message by awaiting ``send``, and the server then builds a
frame for that one connection. For fan-out to thousands of readers that is the cost that
matters, so ``bulletin serve`` runs this protocol: it puts a ``RawSocket`` into the
connection's scope (extension ``bulletin.raw_socket``), through which the hub writes the
same ready-made frame bytes to every connection's transport, without awaiting.
Per-message-deflate is off, so a frame is the same bytes for every connection. Under
any other ASGI server the extension is absent and the app falls back to ``send``.

Limits on what one client can make the server hold (``configured`` sets them from the
settings):

- **Fragments.** One incoming message arrives in at most ``max_fragments`` frames, and
  its bytes are bounded by ``max_frame_bytes`` (websockets' ``max_size``, over every
  fragment); past either the connection is closed with 1009 and the rest of its input is
  discarded unparsed.
- **Outgoing bytes.** Everything the server owes a client counts in one limit,
  ``send_queue_bytes`` of unsent bytes in the transport: events and heartbeats (the hub
  checks what ``RawSocket.write`` returns), and pongs and error frames (checked after
  each read). Over it the connection is closed with 4000 slow and no longer read; once
  the close frame is sent, pings are no longer answered.
- **Every close ends.** However a connection is closed (the app or hub, a ping timeout,
  a refused frame, the close handshake, shutdown), it is reset if it is still open
  ``close_grace_seconds`` later (at shutdown: at most half the shutdown limit), so that a
  client that never reads cannot hold a socket and its kernel buffers (the bytes the
  kernel holds count too: ``uvicorn_http.Lingering``).

No line per connection: uvicorn's line per handshake (``"WebSocket /ws" [accepted]``) and
websockets' (``connection open``, ``connection closed``) are DEBUG here, not INFO, so that
a reconnect storm of 100,000 readers does not write 100,000 lines; the live summary line
(live/summary.py) counts connections instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.frames import Frame

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError as exc:  # pragma: no cover - an install that ignored pyproject's floor
    from importlib.metadata import version

    raise ImportError(f"Bulletin needs uvicorn>=0.52.1 (its sans-I/O WebSocket protocol, "
                      f"tests/live/test_uvicorn_internals.py); uvicorn {version('uvicorn')} "
                      "is installed") from exc

from ..core import closecodes
from ..core.closecodes import CloseCode
from .uvicorn_http import Configurable, default_settings, reset, shutdown_grace

EXTENSION = "bulletin.raw_socket"
# Bytes of one read parsed at a time (see data_received).
_SLICE = 16 * 1024


class RawSocket:
    """The hub's outlet for one connection: frames go straight to the transport."""

    __slots__ = ("_protocol", "_transport")

    def __init__(self, protocol: BulletinWebSocketProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    def write(self, data: bytes) -> int:
        """Write complete frames unless the connection is closing; returns the bytes the
        kernel has not accepted yet."""
        protocol = self._protocol
        transport = self._transport
        if not (protocol.close_sent or protocol.disconnected or transport.is_closing()):
            transport.write(data)
        return transport.get_write_buffer_size()

    def close(self, code: CloseCode) -> None:
        """Send a close frame after what is written; the app's receive() then ends."""
        self._protocol.close_with(code.code, code.reason)


class _ReceiveQueue:
    """The app's receive queue: the part of ``asyncio.Queue`` uvicorn uses, one getter at a
    time, in a fraction of its memory (a Queue is four deques: about 3 KB a connection)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """``asyncio.Event`` as uvicorn's ``writable`` uses it, without a deque per connection."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class _ConnectionLog(logging.LoggerAdapter[logging.Logger]):
    """uvicorn's WebSocket logger with the INFO lines it and websockets write per
    connection (accepted, rejected, open, closed) lowered to DEBUG; warnings and errors
    pass unchanged."""

    @property
    def level(self) -> int:
        return self.logger.level  # uvicorn reads it to decide on TRACE lines

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.debug(msg, *args, **kwargs)


_CONNECTION_LOG = _ConnectionLog(logging.getLogger("uvicorn.error"))


class BulletinWebSocketProtocol(Configurable, WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O protocol with the raw-frame extension, a going-away close, the
    limits above, and less memory per connection (readers hold thousands of them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _ReceiveQueue()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.limits = self.settings or default_settings()
        self.logger = self.conn.logger = _CONNECTION_LOG  # type: ignore[assignment]
        # uvicorn waits this long for the peer's close frame before closing; the reset
        # after close_grace_seconds bounds the whole close.
        self.close_timeout = self.limits.close_grace_seconds
        self._fragments = 0
        self._abort_timer: asyncio.TimerHandle | None = None

    async def send(self, message: Any) -> None:
        try:
            await super().send(message)
        finally:
            self._arm_abort()  # the app may have closed or refused the connection
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The scope has the headers; the parsed handshake is not needed again.
            self.request = self.response = None  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self._arm_abort()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            scope["extensions"][EXTENSION] = RawSocket(self)

    def connection_lost(self, exc: Exception | None) -> None:
        timer = self._abort_timer
        if exc is None and self.lingering is not None:
            self.lingering.add(self.transport, timer.when() if timer is not None
                               else self.loop.time() + self.limits.close_grace_seconds)
        if timer is not None:
            timer.cancel()
            self._abort_timer = None
        super().connection_lost(exc)

    # --- incoming data ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # A read of tiny frames (a few bytes each) is parsed in slices, so that a flood
        # is refused after max_fragments frames rather than after parsing the whole read.
        if len(data) <= _SLICE:
            super().data_received(data)
        else:
            view = memoryview(data)
            for start in range(0, len(data), _SLICE):
                super().data_received(view[start:start + _SLICE])  # type: ignore[arg-type]
                # After a failure the rest is discarded; after a clean close it is still
                # parsed (and dropped), so that the peer's closing frame is found.
                if self.conn.parser_exc is not None or self.transport.is_closing():
                    break
        if (self.handshake_complete and not self.close_sent and not self.disconnected
                and self.transport.get_write_buffer_size() > self.limits.send_queue_bytes):
            # What the reads made the server owe (pongs, answers) is not being taken.
            slow = closecodes.SLOW
            self.close_with(slow.code, slow.reason)
            self.transport.pause_reading()
        self._arm_abort()

    def handle_text(self, event: Frame) -> None:
        self._fragments = 1
        if not self.close_sent:  # past the close, messages are dropped anyway
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        self._fragments = 1
        if not self.close_sent:
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        self._fragments += 1
        if self.close_sent:
            self.frames = []
        elif self._fragments > self.limits.max_fragments:
            self._fail(closecodes.MESSAGE_TOO_BIG)
        else:
            super().handle_cont(event)

    def handle_ping(self) -> None:
        if self.close_sent:
            self.conn.data_to_send()  # nothing is owed past the close frame: drop the pong
            return
        super().handle_ping()

    def _fail(self, code: CloseCode) -> None:
        """Close at once for a message the server will not take; input after it is
        discarded unparsed (websockets' fail)."""
        self.frames = []
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code.code,
                               "reason": code.reason})
        self.conn.fail(code.code, code.reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    # --- closing ------------------------------------------------------------------------

    def close_with(self, code: int, reason: str) -> None:
        """Close from outside the app's task, as the app's own websocket.close would."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        self._arm_abort()

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._arm_abort()

    def shutdown(self) -> None:
        """Server shutdown: close open connections with going-away, not service-restart."""
        if self.handshake_complete and not self.close_sent and not self.disconnected:
            self.stop_keepalive()
            code = closecodes.GOING_AWAY
            self.close_with(code.code, code.reason)
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
        else:
            super().shutdown()
        self._arm_abort(shutdown_grace(self.limits))

    def _arm_abort(self, grace: float | None = None) -> None:
        """Once the connection is closing, reset it if it is still open a grace later."""
        if self.disconnected or not (self.close_sent or self.transport.is_closing()):
            return
        when = self.loop.time() + (self.limits.close_grace_seconds if grace is None else grace)
        timer = self._abort_timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._abort_timer = self.loop.call_at(when, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        if not self.disconnected:
            reset(self.transport)
