"""uvicorn's httptools protocol with the limits a server exposed without a proxy needs.

uvicorn alone takes a request header of any size, waits for ever for headers or a body
that never come, and closes a connection by waiting for its unsent bytes to drain, which
they never do when the client does not read. ``bulletin serve`` runs this protocol
instead. Guarantees, per connection:

- **Header bytes.** The request line and headers of one request are at most
  ``max_header_bytes``; more is answered ``431 Request Header Fields Too Large`` and the
  connection closes. At most one read (256 KiB) past the limit is ever held.
- **Header time.** The headers must be complete ``header_timeout_seconds`` after the
  connection opened or, on a keep-alive connection, after the first byte of the next
  request. Idle time between requests is uvicorn's ``timeout_keep_alive``.
- **Body time.** The body must be complete ``body_timeout_seconds`` after the headers.
- Past either time limit the request is answered ``408 Request Timeout`` where no
  response has started, and the connection closes; the app's ``receive()`` then says
  ``http.disconnect``.
- **Every close ends.** A connection the server closed that has not taken its last bytes
  ``close_grace_seconds`` later (at shutdown: at most half the shutdown limit) is reset,
  so that a client that never reads cannot hold a socket and its kernel buffers; that
  counts the bytes the kernel holds too (``Lingering``, on Linux).
- ``bulletin.abort`` in a request's scope extensions resets the connection at once, for
  responses that cannot end by themselves while the client does not read (SSE). Under
  other ASGI servers the extension is absent.

All of it rests on uvicorn's ``HttpToolsProtocol`` internals (its parser callbacks,
``RequestResponseCycle`` and ``_start_asgi_task``); tests/integration/
test_transport_limits.py drives each limit over real sockets.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
import socket
import struct
import termios
from typing import Any, ClassVar, Self

import httptools
from starlette.requests import ClientDisconnect
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from ..settings import Settings

ABORT = "bulletin.abort"
log = logging.getLogger("bulletin.http")
# SO_LINGER on with a zero timeout: close() sends a reset and drops the unsent bytes,
# instead of leaving them in the kernel for a peer that never takes them.
_RESET_LINGER = struct.pack("ii", 1, 0)


def reset(transport: asyncio.Transport) -> None:
    """Close at once with a TCP reset, dropping whatever the peer has not taken."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
        except OSError:
            pass  # already gone, or not a TCP socket: abort() still frees the transport
    transport.abort()


# Linux: bytes of a TCP socket's send queue that the peer has not acknowledged.
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)


def _unsent(fd: int) -> int:
    if _OUTQ is None:
        return 0  # not Linux: the kernel's own orphan handling decides
    queued: int = struct.unpack("i", fcntl.ioctl(fd, _OUTQ, b"\0\0\0\0"))[0]
    return queued


class Lingering:
    """Sockets closed while the kernel still held bytes for the peer, until they end.

    asyncio closes a socket as soon as its own buffer is empty; the kernel then keeps
    what it holds for a peer that may never take it (an orphan socket: megabytes of
    kernel memory, for minutes, and the peer never sees the end). Such a socket is kept
    here instead, through a duplicate descriptor with its write side shut (so the peer
    still gets EOF after the data), until the peer has taken everything, or reset at its
    deadline. One per server (``serving.config``); the server waits for it at shutdown.
    """

    POLL_SECONDS = 0.25

    def __init__(self) -> None:
        self._sockets: dict[socket.socket, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._ended = asyncio.Event()
        self._ended.set()

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, transport: asyncio.BaseTransport, deadline: float) -> None:
        """Keep the socket that ``transport`` is about to close while its kernel buffer
        still holds bytes; reset it at ``deadline`` (event loop time) if they are not
        taken by then."""
        sock = transport.get_extra_info("socket")
        if sock is None:
            return
        try:
            fd = sock.fileno()
            if (fd < 0 or not _unsent(fd)
                    or sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8) == _RESET_LINGER):
                return  # all taken, or being reset on purpose
            kept = socket.socket(fileno=os.dup(fd))
        except (OSError, ValueError):
            return
        try:
            kept.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._sockets[kept] = deadline
        self._ended.clear()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.POLL_SECONDS, self._check)

    def _check(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for kept, deadline in list(self._sockets.items()):
            try:
                unsent = _unsent(kept.fileno())
            except OSError:
                unsent = 0
            if unsent and now < deadline:
                continue
            del self._sockets[kept]
            if unsent:
                log.debug("a closed connection did not take its last bytes in time; reset")
                try:
                    kept.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
                except OSError:
                    pass
            kept.close()
        if self._sockets:
            self._timer = loop.call_later(self.POLL_SECONDS, self._check)
        else:
            self._ended.set()

    async def wait(self) -> None:
        """Return once every kept socket has ended (each has a deadline)."""
        await self._ended.wait()

    def reset_all(self) -> None:
        """Reset whatever is still kept (the event loop is about to end)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for kept in list(self._sockets):
            try:
                kept.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
            except OSError:
                pass
            kept.close()
        self._sockets.clear()
        self._ended.set()


def shutdown_grace(settings: Settings) -> float:
    """How long a connection closed by a stopping server may take to take its last bytes:
    the close grace, but never so long that it holds up the shutdown limit."""
    return min(settings.close_grace_seconds, settings.shutdown_seconds / 2)


@functools.cache
def default_settings() -> Settings:
    """The limits of a protocol class used without ``configured`` (the defaults)."""
    return Settings()


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a request head over the limit."""


class Configurable:
    """A protocol class uvicorn instantiates itself, given the settings through a
    subclass (uvicorn.Config's ``http=`` and ``ws=`` take classes, not instances)."""

    # Set on the subclass that ``configured`` makes; None: the settings' defaults, and
    # sockets closed with bytes in the kernel are left to the kernel.
    settings: ClassVar[Settings | None] = None
    lingering: ClassVar[Lingering | None] = None

    @classmethod
    def configured(cls, settings: Settings, lingering: Lingering | None = None) -> type[Self]:
        """This protocol with the limits of ``settings``."""
        made: type[Self] = type(
            cls.__name__, (cls,), {"settings": settings, "lingering": lingering})
        return made


class BulletinHttpProtocol(Configurable, HttpToolsProtocol):
    """HTTP/1.1 with bounded header bytes, header and body time, and closes that end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = self.settings or default_settings()
        # Whether the parser is between requests or inside a request head; the bytes read
        # while in it (bounds the memory of an unfinished head) and the bytes of the
        # head's parts (exact, also for a pipelined head that began inside a read).
        self._in_head = True
        self._head_read = 0
        self._head_parts = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._stopping = False

    # --- the connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds,
                                                self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None and self.lingering is not None:
            deadline = (self._abort_timer.when() if self._abort_timer is not None
                        else self.loop.time() + self.limits.close_grace_seconds)
            self.lingering.add(self.transport, deadline)
        for timer in (self._head_timer, self._body_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._abort_timer = None
        if self.scope is not None:
            # The extension refers back to this protocol: no cycle is left for the GC.
            self.scope.get("extensions", {}).pop(ABORT, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_read += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._cancel_request_timers()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._head_parts > self.limits.max_header_bytes:
                self._refuse(431, "Request header fields too large.")
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        if (self._in_head and self._head_read > self.limits.max_header_bytes
                and not self.transport.is_closing()):
            self._refuse(431, "Request header fields too large.")

    def shutdown(self) -> None:
        self._stopping = True
        super().shutdown()
        self._arm_abort()

    def send_400_response(self, msg: str) -> None:
        super().send_400_response(msg)
        self._arm_abort()

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._arm_abort()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A response without keep-alive closed the transport in the cycle's send().
        self._arm_abort()

    # --- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_parts = 0
        if self._head_timer is None:  # the first byte of a request after keep-alive
            self._head_timer = self.loop.call_later(self.limits.header_timeout_seconds,
                                                    self._head_timeout)

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is previous:
            return  # a WebSocket upgrade: the WebSocket protocol takes the connection over
        # The request's task is created but has not run yet: the scope may still change.
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[ABORT] = functools.partial(self._abort_request, cycle)
        self._body_timer = self.loop.call_later(self.limits.body_timeout_seconds,
                                                self._body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True
        self._head_read = 0

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        super()._start_asgi_task(cycle, functools.partial(self._run_app, app))

    async def _run_app(self, app: ASGI3Application, scope: Scope,
                       receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        try:
            await app(scope, receive, send)
        except ClientDisconnect:
            # The client left (or was timed out) in the middle of its body: nothing can
            # be answered and nothing is wrong with the server, so no traceback either.
            pass
        finally:
            # uvicorn may close the transport once the app has returned.
            self.loop.call_soon(self._arm_abort)

    # --- limits -------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_parts += size
        if self._head_parts > self.limits.max_header_bytes:
            raise _HeadTooLarge

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(408, "Request headers not received in time.")

    def _body_timeout(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing():
            self._refuse(408, "Request body not received in time.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` if no response has started on this connection, then close."""
        cycle = self.cycle
        # A pipelined request waits behind one whose response is under way: only closing
        # is left (no browser pipelines; a client that does gets its connection cut).
        can_answer = not self.pipeline and (
            cycle is None or cycle.response_complete or not cycle.response_started)
        if cycle is not None and not cycle.response_complete:
            # The app's receive() now says http.disconnect; whatever it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if can_answer:
            body = message.encode("ascii")
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"content-type: text/plain; charset=utf-8\r\n",
                            b"content-length: %d\r\n" % len(body),
                            b"connection: close\r\n\r\n", body])
            self.transport.write(b"".join(content))
        log.debug("%s: answered %d and closed", self.client, status)
        self.transport.close()
        self._arm_abort()

    def _cancel_request_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    # --- closes that end ----------------------------------------------------------------

    def _arm_abort(self) -> None:
        """Once the transport is closing, reset it if it is still open a grace later."""
        if self.parser is None or not self.transport.is_closing():
            return  # lost already, or not closing
        grace = (shutdown_grace(self.limits) if self._stopping
                 else self.limits.close_grace_seconds)
        when = self.loop.time() + grace
        timer = self._abort_timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._abort_timer = self.loop.call_at(when, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        if self.parser is not None:
            log.debug("%s: last bytes not taken in time; reset", self.client)
            reset(self.transport)

    def _abort_request(self, cycle: RequestResponseCycle) -> None:
        """The ``bulletin.abort`` extension: reset the connection of ``cycle`` at once."""
        if cycle.response_complete or self.parser is None:
            return  # the connection has moved on to another request, or is gone
        cycle.disconnected = True
        cycle.message_event.set()
        reset(self.transport)
