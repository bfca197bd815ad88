"""Server-Sent Events: the same events as the WebSocket, for clients that cannot use it.

``GET /api/streams/{slug}/events`` with ``Accept: text/event-stream``. Each record has
``id:`` = seq, ``event:`` = op and ``data:`` = the event JSON; the browser's EventSource
sends the last id back as ``Last-Event-ID`` when it reconnects, and the stream resumes
after it. ``?since=N`` does the same for the first connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..core import closecodes
from ..core.errors import ApiError
from ..core.hub import Subscriber
from ..core.prepared import Encoding
from ..core.protocol import MAX_SEQ
from ..live.driver import HubDriver, QueueOutlet
from ..live.uvicorn_http import ABORT
from ..store import eventlog
from ..store.credentials import SCOPE_KEY
from .services import services
from .validation import ascii_int, post_filter

# How long EventSource waits before reconnecting, in milliseconds.
RETRY_MS = 2000


def wants_event_stream(request: Request) -> bool:
    """Whether the client asked for text/event-stream rather than JSON."""
    return "text/event-stream" in request.headers.get("accept", "")


def resume_point(request: Request) -> int | None:
    """The seq to resume after: Last-Event-ID, else ?since=, else None (only new events)."""
    for name, raw in (("Last-Event-ID", request.headers.get("last-event-id")),
                      ("since", request.query_params.get("since"))):
        if raw is None or raw.strip() == "":
            continue
        seq = ascii_int(raw.strip(), max_digits=19)
        if seq is None or seq > MAX_SEQ:
            raise ApiError(400, "invalid_parameter", f"{name} must be a seq (an integer >= 0)",
                           {"parameter": name})
        return seq
    return None


async def event_stream(request: Request, slug: str, *, drafts: bool) -> EventStream:
    """Check the stream exists for this caller, then subscribe an SSE outlet to it."""
    since = resume_point(request)
    only = post_filter(request)
    svc = services(request)
    async with svc.db.read() as session:
        await eventlog.get_stream(session, slug=slug, include_drafts=drafts)
    live: HubDriver = svc.live
    outlet = QueueOutlet()
    sub = live.connect(outlet, Encoding.SSE, drafts=drafts,
                       credential=request.scope.get(SCOPE_KEY))
    live.subscribe(sub, slug, since, only)
    return EventStream(live, sub, outlet)


class EventStream(Response):
    """The streaming response: drains the subscriber's queue until either side ends.

    Once the outlet is closed (slow eviction, shutdown, the client's disconnect), a send
    that the client has not taken within ``close_grace_seconds`` resets the connection
    through the server's ``bulletin.abort`` extension: a reader that never reads would
    otherwise hold the response, its socket and its kernel buffers for ever. Under other
    ASGI servers the extension is absent and their own flow control decides.
    """

    def __init__(self, live: HubDriver, sub: Subscriber, outlet: QueueOutlet) -> None:
        super().__init__(media_type="text/event-stream")
        self.live = live
        self.sub = sub
        self.outlet = outlet
        self._abort: Callable[[], None] | None = None
        self._stuck: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._abort = scope.get("extensions", {}).get(ABORT)
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            await self._send(send, {"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ]})
            await self._send(send, {"type": "http.response.body",
                                    "body": b"retry: %d\n\n" % RETRY_MS, "more_body": True})
            while True:
                batch = await self.outlet.next_batch()
                if not batch:
                    break
                await self._send(send, {"type": "http.response.body", "body": b"".join(batch),
                                        "more_body": True})
                self.outlet.sent(batch)
                if not self.sub.streams:
                    break  # reset or refused: the client must start over
            await self._send(send, {"type": "http.response.body", "body": b"",
                                    "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            self.live.disconnect(self.sub)

    async def _send(self, send: Send, message: Message) -> None:
        """``send``, watched for a client that stopped taking bytes (see the class)."""
        if self._abort is None:
            await send(message)
            return
        self._stuck = asyncio.get_running_loop().call_later(
            self.live.settings.close_grace_seconds, self._check_stuck)
        try:
            await send(message)
        finally:
            if self._stuck is not None:
                self._stuck.cancel()
                self._stuck = None

    def _check_stuck(self) -> None:
        """A send has waited a grace: reset the connection if the outlet has closed."""
        if self.outlet.closed is None:
            # Still open: a slow client, evicted by the hub once its queue is full.
            self._stuck = asyncio.get_running_loop().call_later(
                self.live.settings.close_grace_seconds, self._check_stuck)
            return
        self._stuck = None
        if self._abort is not None:
            self._abort()  # the blocked send returns once the connection is gone

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.outlet.close(closecodes.NORMAL)
                return
