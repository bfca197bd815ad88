"""A committed event prepared for the wire, and the outlets it is written to.

A ``PreparedEvent`` holds an event's stored JSON and builds each transport's bytes (a
WebSocket frame, an SSE record) at most once, however many subscribers receive it; a
later change to its post restates it and the bytes are built again. An ``Outlet`` is where
one subscriber's bytes go, and never blocks.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Protocol

from . import protocol
from .closecodes import CloseCode


class Encoding(enum.Enum):
    """How an outlet wants frames: which bytes ``Outlet.write`` receives."""

    # A complete WebSocket frame, written straight to the socket.
    FRAME = "frame"
    # The bare JSON message, for transports that frame it themselves (ASGI websocket.send).
    MESSAGE = "message"
    # A Server-Sent Events record.
    SSE = "sse"


class Outlet(Protocol):
    """Where one subscriber's bytes go. ``write`` must not block."""

    def write(self, data: bytes) -> int:
        """Queue ``data`` for sending; return the bytes written but not yet handed to
        the network (one call per subscriber per event: the hot path)."""

    def close(self, code: CloseCode) -> None:
        """Close the connection with ``code`` after what is already written."""


class PreparedEvent:
    """One committed event with its encodings, each built once (again only if a later
    change to its post restates it)."""

    __slots__ = ("_facts", "_frame", "_sse", "_stub", "at", "op", "payload", "post_id",
                 "seq", "status", "stream")

    def __init__(self, stream: str, seq: int, op: str, payload: bytes,
                 status: str | None = None, post_id: int | None = None) -> None:
        self.stream = stream
        self.seq = seq
        self.op = op
        self.payload = payload
        # The stream's status after this event, for stream.* events.
        self.status = status
        # The post a post.* event carries, whose later changes restate this event.
        self.post_id = post_id
        # When it was written (ISO 8601, from the payload): for the delivery latency.
        self.at: str | None = None
        self._frame: bytes | None = None
        self._sse: bytes | None = None
        # For filtered subscriptions (built on demand): the post's JSON, and the stub.
        self._facts: dict[str, Any] | None = None
        self._stub: PreparedEvent | None = None

    @classmethod
    def from_payload(cls, payload: str | bytes) -> PreparedEvent:
        """Read an event from its stored wire JSON."""
        data = json.loads(payload)
        info = data.get("stream_info")
        status = info.get("status") if isinstance(info, dict) else None
        post = data.get("post")
        post_id = post.get("id") if isinstance(post, dict) else None
        if not isinstance(post_id, int) or isinstance(post_id, bool):
            post_id = None
        raw = payload.encode() if isinstance(payload, str) else payload
        event = cls(data["stream"], data["seq"], data["op"], raw, status, post_id)
        at = data.get("at")
        event.at = at if isinstance(at, str) else None
        return event

    def post(self) -> dict[str, Any] | None:
        """The post state this event carries (decoded anew: only changes need it)."""
        post = json.loads(self.payload).get("post")
        return post if isinstance(post, dict) else None

    def restate(self, post: dict[str, Any]) -> None:
        """Carry ``post``, its post's newer state, instead of the one carried so far."""
        payload = protocol.restate(self.payload, post).encode()
        if payload != self.payload:
            self.payload = payload
            self._frame = self._sse = None
            self._facts = None

    def for_filter(self, only: protocol.PostFilter) -> PreparedEvent:
        """What a subscription with ``only`` receives of this event: the event itself,
        or (a post event whose post it does not show) its stub."""
        if self.post_id is None:
            return self
        if self._facts is None:
            self._facts = self.post() or {}
        if only.matches(self._facts):
            return self
        if self._stub is None:
            at = json.loads(self.payload).get("at")
            self._stub = PreparedEvent(self.stream, self.seq, self.op, protocol.filtered_event(
                self.stream, self.seq, self.op, at, self.post_id))
        return self._stub

    def encoded(self, encoding: Encoding) -> bytes:
        """The event as ``encoding`` wants it."""
        if encoding is Encoding.FRAME:
            if self._frame is None:
                self._frame = protocol.ws_frame(self.payload)
            return self._frame
        if encoding is Encoding.SSE:
            if self._sse is None:
                self._sse = protocol.sse_event(self.payload, event=self.op, id=self.seq)
            return self._sse
        return self.payload

    def __repr__(self) -> str:
        return f"PreparedEvent({self.stream!r}, {self.seq}, {self.op!r})"
