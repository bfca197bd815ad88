"""The WebSocket endpoint: protocol v1 at /ws."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from .. import closecodes, protocol
from ..closecodes import CloseCode
from ..errors import ApiError
from ..hub import Encoding, Hub, Subscriber
from ..live import Live, QueueOutlet
from ..services import services
from ..wsprotocol import EXTENSION, RawSocket
from .api import caller

PATH = "/ws"


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
    """Serve one connection: subscribe/unsubscribe frames in, events out."""
    svc = services(websocket)
    live: Live = svc.live
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
    hub = live.hub
    if isinstance(raw, RawSocket):
        sub = hub.connect(raw, Encoding.FRAME, drafts=editor is not None)
        try:
            await _read_frames(websocket, live, sub)
        finally:
            live.run(hub.disconnect(sub))
        return

    # Any other ASGI server: a queue per connection, drained by awaiting send().
    outlet = QueueOutlet()
    sub = hub.connect(outlet, Encoding.MESSAGE, drafts=editor is not None)
    reader = asyncio.create_task(_read_frames(websocket, live, sub))
    writer = asyncio.create_task(_drain(websocket, outlet))
    try:
        await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        await asyncio.gather(reader, writer, return_exceptions=True)
        live.run(hub.disconnect(sub))


async def _read_frames(websocket: WebSocket, live: Live, sub: Subscriber) -> None:
    hub: Hub = live.hub
    while sub.closed is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            hub.refuse(sub, "bad_frame", "frames must be JSON text, not binary")
            continue
        try:
            frame = protocol.parse(text)
        except protocol.ProtocolError as exc:
            hub.refuse(sub, exc.code, exc.message, exc.stream)
            continue
        if isinstance(frame, protocol.Subscribe):
            live.run(hub.subscribe(sub, frame.stream, frame.since))
        else:
            live.run(hub.unsubscribe(sub, frame.stream))


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
