"""Wire protocol v1: client frames in, server frames out. No I/O.

Client frames are parsed into ``Subscribe`` / ``Unsubscribe`` / ``Presence`` or refused with a
``ProtocolError`` that carries the ``error`` frame's code. Server frames are built as
JSON bytes, and wrapped once per transport: a ready-to-write WebSocket frame, or a
Server-Sent Events record. ``restate`` rewrites a past post event to carry the post's
current state; the event log and the hub both use it, so they agree byte for byte.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from . import safejson

VERSION = 1
# A stream's slug: its name in URLs and frames (lowercase letters, digits, inner hyphens).
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
SLUG_RE = re.compile(SLUG_PATTERN)
# A post's tag: a short slug (lowercase letters, digits, inner hyphens), at most 32.
TAG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
TAG_RE = re.compile(TAG_PATTERN)
MAX_TAGS = 10
# What a stream can be; readers see only the public ones (a draft is for editors).
STREAM_STATUSES = ("draft", "live", "ended")
PUBLIC_STATUSES = frozenset({"live", "ended"})
# What a post can be. Readers see only published posts; the others wait: for an editor's
# approval (a contributor's, ``submitted``; sent back to its contributor with a note,
# ``returned``) or for their time (``scheduled``). Publishing is the only way out, and a
# published post never goes back (docs/api.md#posts-that-wait).
POST_STATUSES = ("published", "submitted", "returned", "scheduled")
WAITING_STATUSES = ("submitted", "returned", "scheduled")
POST_TRANSITIONS = frozenset({
    ("submitted", "published"), ("submitted", "returned"),
    ("returned", "submitted"), ("returned", "published"),
    ("scheduled", "published"),
})


def check_post_transition(current: str, new: str) -> None:
    """Raise ``ValueError`` unless a post may go from ``current`` to ``new``."""
    if (current, new) not in POST_TRANSITIONS:
        expected = sorted(a for a, b in POST_TRANSITIONS if b == new)
        raise ValueError(f"a post becomes {new} from {' or '.join(expected)}, "
                         f"not from {current}")
# The event ops of protocol v1 (docs/events.md); client_js/protocol.js lists the same.
EVENT_OPS = (
    "post.created",
    "post.edited",
    "post.deleted",
    "post.pinned",
    "post.unpinned",
    "post.embedded",
    "stream.updated",
    "stream.ended",
)
MAX_SEQ = 2**63 - 1
# What an editor may say they are doing on a stream (a ``presence`` frame's ``state``).
PRESENCE_STATES = ("editing", "viewing")


@dataclass(frozen=True, slots=True)
class PostFilter:
    """Which posts a reader follows: those with ``tag``, only key events, or both.

    A filtered subscription still receives every event, in seq order: an event whose
    post does not match comes as a stub (``filtered_event``), so that the reader's seq
    has no gaps and a post that stops matching (unpinned, its tag taken off) leaves.
    """

    tag: str | None = None
    pinned: bool = False

    def matches(self, post: dict[str, Any]) -> bool:
        """Whether a post's JSON is one of them (a deleted post never is)."""
        if post.get("deleted") is True or (self.pinned and post.get("pinned") is not True):
            return False
        tags = post.get("tags")
        return self.tag is None or (isinstance(tags, list) and self.tag in tags)

    def query(self) -> list[tuple[str, str]]:
        """The query parameters that ask for this filter (?tag=X&pinned=true)."""
        pairs = [] if self.tag is None else [("tag", self.tag)]
        return pairs + ([("pinned", "true")] if self.pinned else [])

    def __bool__(self) -> bool:
        return self.tag is not None or self.pinned


NO_FILTER = PostFilter()


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Follow ``stream``; replay events after ``since`` first (None: only new ones),
    only the posts ``filter`` lets through (the rest as stubs)."""

    stream: str
    since: int | None
    filter: PostFilter = NO_FILTER


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Stop following ``stream``."""

    stream: str


@dataclass(frozen=True, slots=True)
class Presence:
    """An editor says what they are doing on ``stream``: viewing it (``post`` None, or the
    post they look at) or editing ``post``."""

    stream: str
    post: int | None
    state: str


ClientFrame = Subscribe | Unsubscribe | Presence


class ProtocolError(Exception):
    """A refused client frame; the connection stays open."""

    def __init__(self, code: str, message: str, stream: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stream = stream


def parse(text: str) -> ClientFrame:
    """Parse one client text frame, or raise ProtocolError saying what is wrong."""
    try:
        data = safejson.loads(text)
    except safejson.JsonTooDeep as exc:
        raise ProtocolError("json_too_deep", f"the frame is refused: {exc}") from None
    except ValueError:
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", "a frame must be a JSON object")
    kind = data.get("type")
    if kind not in ("subscribe", "unsubscribe", "presence"):
        raise ProtocolError(
            "unknown_type",
            f"expected type 'subscribe', 'unsubscribe' or 'presence', got {_show(kind)}")
    stream = data.get("stream")
    if not isinstance(stream, str) or not SLUG_RE.match(stream):
        raise ProtocolError("bad_stream", f"'stream' must be a stream slug, got {_show(stream)}")
    if kind == "unsubscribe":
        _no_extra(data, {"type", "stream"}, stream)
        return Unsubscribe(stream)
    if kind == "presence":
        return _presence(data, stream)
    _no_extra(data, {"type", "stream", "since", "filter"}, stream)
    since = data.get("since")
    if since is not None and (
        isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_SEQ
    ):
        raise ProtocolError(
            "bad_since", f"'since' must be a seq (an integer >= 0) or null, got {_show(since)}",
            stream)
    return Subscribe(stream, since, _filter(data.get("filter"), stream))


def _filter(raw: Any, stream: str) -> PostFilter:
    if raw is None:
        return NO_FILTER
    if not isinstance(raw, dict) or set(raw) - {"tag", "pinned"}:
        raise ProtocolError("bad_filter", "'filter' must be an object with 'tag' and/or "
                            f"'pinned', got {_show(raw)}", stream)
    tag, pinned = raw.get("tag"), raw.get("pinned", False)
    if tag is not None and not (isinstance(tag, str) and TAG_RE.match(tag)):
        raise ProtocolError("bad_filter", f"'filter.tag' must be a tag, got {_show(tag)}",
                            stream)
    if not isinstance(pinned, bool):
        raise ProtocolError("bad_filter", f"'filter.pinned' must be true or false, got "
                            f"{_show(pinned)}", stream)
    return PostFilter(tag, pinned)


def _presence(data: dict[str, Any], stream: str) -> Presence:
    _no_extra(data, {"type", "stream", "post", "state"}, stream)
    state = data.get("state")
    if state not in PRESENCE_STATES:
        raise ProtocolError(
            "bad_presence", f"'state' must be 'editing' or 'viewing', got {_show(state)}", stream)
    post = data.get("post")
    if post is not None and (
        isinstance(post, bool) or not isinstance(post, int) or not 0 < post <= MAX_SEQ
    ):
        raise ProtocolError(
            "bad_presence", f"'post' must be a post id (an integer > 0) or null, got {_show(post)}",
            stream)
    if state == "editing" and post is None:
        raise ProtocolError("bad_presence", "'editing' needs the 'post' being edited", stream)
    return Presence(stream, post, state)


def _no_extra(data: dict[str, Any], allowed: set[str], stream: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ProtocolError("bad_frame", f"unknown field(s): {', '.join(extra)}", stream)


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- server frames -----------------------------------------------------------------------


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def subscribed(stream: str, seq: int) -> bytes:
    """Now following ``stream``, whose newest event is ``seq``."""
    return _dump({"type": "subscribed", "stream": stream, "seq": seq})


def unsubscribed(stream: str) -> bytes:
    """No longer following ``stream``."""
    return _dump({"type": "unsubscribed", "stream": stream})


def reset(stream: str, seq: int) -> bytes:
    """Reload ``stream`` over HTTP, then subscribe again from its seq."""
    return _dump({"type": "reset", "stream": stream, "seq": seq})


def error(code: str, message: str, stream: str | None = None) -> bytes:
    """A refused frame."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if stream is not None:
        frame["stream"] = stream
    return _dump(frame)


def presence(stream: str, editors: list[dict[str, Any]]) -> bytes:
    """Who is on ``stream`` (editors only): each editor's id, name, post, state and since."""
    return _dump({"type": "presence", "stream": stream, "editors": editors})


def readers(stream: str, count: int) -> bytes:
    """How many readers have ``stream`` open, over every process (editors only)."""
    return _dump({"type": "readers", "stream": stream, "count": count})


def queue(stream: str) -> bytes:
    """The posts that wait on ``stream`` changed (editors only). It holds nothing else:
    each desk reads again the lists its account may see."""
    return _dump({"type": "queue", "stream": stream})


HEARTBEAT = _dump({"type": "heartbeat"})


def filtered_event(stream: str, seq: int, op: str, at: Any, post_id: int) -> bytes:
    """What a filtered subscription receives for an event whose post it does not show:
    its seq and op, and the post's id only (a page drops the post if it had it)."""
    return _dump({"type": "event", "stream": stream, "seq": seq, "op": op, "at": at,
                  "filtered": True, "post": {"id": post_id}})


# --- transport encodings -----------------------------------------------------------------


def ws_frame(payload: bytes) -> bytes:
    """A complete unmasked, unfragmented WebSocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def sse_event(payload: bytes, *, event: str, id: int | None = None) -> bytes:
    """One Server-Sent Events record. JSON payloads hold no raw newlines."""
    head = f"id: {id}\nevent: {event}\n" if id is not None else f"event: {event}\n"
    return head.encode() + b"data: " + payload + b"\n\n"


SSE_HEARTBEAT = b": heartbeat\n\n"


# --- restating past events -----------------------------------------------------------------


def restate(payload: str | bytes, post: dict[str, Any]) -> str:
    """An earlier post event's wire JSON, carrying ``post`` (the post's newer state).

    Every key but ``post`` keeps its value and place (seq, op, ``at``), and the result is
    encoded as stored events are, so the event log and every hub's window restate one
    event to the same bytes. An event already carrying a later state than ``post`` (it is
    deleted and ``post`` is not, or its text revision is higher) comes back unchanged: a
    read that raced a correction can never bring the old text back. Idempotent.
    """
    text = payload.decode() if isinstance(payload, bytes) else payload
    data = json.loads(text)
    old = data.get("post") if isinstance(data, dict) else None
    if not isinstance(old, dict) or _state_rank(old) > _state_rank(post):
        return text
    data["post"] = post
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _state_rank(post: dict[str, Any]) -> tuple[bool, int]:
    # A post only moves forward: its text revision grows and a deletion is final. Pins
    # toggle and have no order, so states that differ only in the pin rank equal.
    revision = post.get("revision")
    return (post.get("deleted") is True,
            revision if isinstance(revision, int) and not isinstance(revision, bool) else 0)
