"""The WebSocket endpoint: protocol v1 at /ws.

Every frame a client sends is paid for from two token buckets, the connection's
(``frames_per_second``) and its address's (``address_frames_per_second``, across all its
connections); a client over either is closed with 4009 too_many_requests, and retries
after a delay. An unexpected failure while serving a connection closes it with 1011 and
one log line, never a traceback per frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from ...core import closecodes, protocol
from ...core.closecodes import CloseCode
from ...core.errors import ApiError
from ...core.hub import Subscriber
from ...core.prepared import Encoding
from ...core.presence import EditorRef
from ...core.ratelimit import TokenBucket
from ...live.driver import HubDriver, QueueOutlet
from ...live.uvicorn_ws import EXTENSION, RawSocket
from ...settings import Settings
from ..callers import caller, credential
from ..services import services

PATH = "/ws"
log = logging.getLogger("bulletin.ws")


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a browser page at ``origin`` may connect; apps send no Origin at all."""
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin in allowed or "*" in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


async def websocket_endpoint(websocket: WebSocket) -> None:
    """Serve one connection: subscribe/unsubscribe/presence frames in, events out."""
    svc = services(websocket)
    live: HubDriver = svc.live
    await websocket.accept()
    if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"),
                          svc.settings.allowed_origins):
        await _close(websocket, closecodes.FORBIDDEN_ORIGIN)
        return
    try:
        editor = await caller(websocket, required=False)
    except ApiError as exc:
        await websocket.send_text(protocol.error(exc.code, exc.message).decode())
        await _close(websocket, closecodes.UNAUTHORIZED)
        return

    raw = websocket.scope.get("extensions", {}).get(EXTENSION)
    drafts = editor is not None
    who = None
    if editor is not None:
        assert editor.id is not None
        who = EditorRef(editor.id, editor.display_name)
    if isinstance(raw, RawSocket):
        sub = live.connect(raw, Encoding.FRAME, drafts=drafts, credential=credential(websocket),
                           editor=who)
        try:
            await _read_frames(websocket, live, sub, svc.settings)
        finally:
            live.disconnect(sub)
        return

    # Any other ASGI server: a queue per connection, drained by awaiting send().
    outlet = QueueOutlet()
    sub = live.connect(outlet, Encoding.MESSAGE, drafts=drafts, credential=credential(websocket),
                       editor=who)
    reader = asyncio.create_task(_read_frames(websocket, live, sub, svc.settings))
    writer = asyncio.create_task(_drain(websocket, outlet))
    try:
        await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        await asyncio.gather(reader, writer, return_exceptions=True)
        live.disconnect(sub)


async def _read_frames(websocket: WebSocket, live: HubDriver, sub: Subscriber,
                       settings: Settings) -> None:
    try:
        await _serve_frames(websocket, live, sub, settings)
    except Exception as exc:  # a bug must cost this connection only, in one line
        log.error("closed a WebSocket connection on an unexpected error: %r", exc)
        live.close(sub, closecodes.INTERNAL_ERROR)


async def _serve_frames(websocket: WebSocket, live: HubDriver, sub: Subscriber,
                        settings: Settings) -> None:
    address = websocket.client.host if websocket.client else "unknown"
    clock = time.monotonic
    bucket: TokenBucket | None = None
    limiter = live.frame_limiter
    while sub.closed is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        now = clock()
        if bucket is None:  # made at the first frame: most readers send one or two
            bucket = TokenBucket(rate=settings.frames_per_second,
                                 burst=settings.frame_burst, now=now)
        if not bucket.take(now) or limiter.take(address, now):
            live.close(sub, closecodes.TOO_MANY_REQUESTS)
            return
        text = message.get("text")
        if text is None:
            live.refuse(sub, "bad_frame", "frames must be JSON text, not binary")
            continue
        try:
            frame = protocol.parse(text)
        except protocol.ProtocolError as exc:
            live.refuse(sub, exc.code, exc.message, exc.stream)
            continue
        if isinstance(frame, protocol.Subscribe):
            live.subscribe(sub, frame.stream, frame.since, frame.filter)
        elif isinstance(frame, protocol.Presence):
            live.presence(sub, frame)
        else:
            live.unsubscribe(sub, frame.stream)


async def _drain(websocket: WebSocket, outlet: QueueOutlet) -> None:
    while True:
        batch = await outlet.next_batch()
        if not batch:
            break
        for data in batch:
            await websocket.send_text(data.decode())
        outlet.sent(batch)
    assert outlet.closed is not None
    await _close(websocket, outlet.closed)


async def _close(websocket: WebSocket, code: CloseCode) -> None:
    try:
        await websocket.close(code.code, code.reason)
    except (RuntimeError, OSError):
        pass  # already closed by the peer


def routes() -> list[BaseRoute]:
    """The WebSocket route."""
    return [WebSocketRoute(PATH, websocket_endpoint)]
