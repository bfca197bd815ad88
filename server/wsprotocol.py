"""uvicorn's sans-I/O WebSocket protocol, plus a way to write pre-built frames.

An ASGI app can only send a message by awaiting ``send``, and the server then builds a
frame for that one connection. For fan-out to thousands of readers that is the cost that
matters, so ``bulletin serve`` runs this protocol: it puts a ``RawSocket`` into the
connection's scope (extension ``bulletin.raw_socket``), through which the hub writes the
same ready-made frame bytes to every connection's transport, without awaiting.
Per-message-deflate is off, so a frame is the same bytes for every connection. Under
any other ASGI server the extension is absent and the app falls back to ``send``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import closecodes
from .closecodes import CloseCode

EXTENSION = "bulletin.raw_socket"


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
        if not protocol.close_sent and not protocol.disconnected:
            transport.write(data)
        return transport.get_write_buffer_size()

    def close(self, code: CloseCode) -> None:
        """Send a close frame after what is written; the app's receive() then ends."""
        self._protocol.close_with(code.code, code.reason)


class _Inbox:
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


class BulletinWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O protocol with the raw-frame extension, a going-away close, and
    less memory per connection (readers hold thousands of them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The scope has the headers; the parsed handshake is not needed again.
            self.request = self.response = None  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            scope["extensions"][EXTENSION] = RawSocket(self)

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
            return
        super().shutdown()
