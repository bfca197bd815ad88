"""Every WebSocket close code the server sends, and what a client should do after it.

Clients (``client_js/``, apps) read this table from docs/protocol.md; the names and
numbers are part of wire protocol v1 and never change meaning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reconnect(enum.Enum):
    """How a client should react to a close."""

    # Reconnect at once and resume from the last applied seq.
    NOW = "now"
    # Reconnect after a random delay (full jitter, growing back-off), then resume.
    BACKOFF = "backoff"
    # Do not retry blindly: the same request would be refused again. Fix the cause
    # (page origin, client bug, subscription count) or ask the user first.
    NO = "no"


@dataclass(frozen=True, slots=True)
class CloseCode:
    """A close code with its reason text and reconnect policy."""

    code: int
    name: str
    reconnect: Reconnect
    reason: str


NORMAL = CloseCode(1000, "normal", Reconnect.NO, "closed")
GOING_AWAY = CloseCode(1001, "going_away", Reconnect.BACKOFF, "server shutting down")
PROTOCOL_ERROR = CloseCode(1002, "protocol_error", Reconnect.NO, "protocol error")
MESSAGE_TOO_BIG = CloseCode(1009, "message_too_big", Reconnect.NO, "frame too large")
INTERNAL_ERROR = CloseCode(1011, "internal_error", Reconnect.BACKOFF, "internal error")
SERVICE_RESTART = CloseCode(1012, "service_restart", Reconnect.BACKOFF, "server restarting")
SLOW = CloseCode(4000, "slow", Reconnect.NOW, "too slow: outgoing queue full; resume")
UNAUTHORIZED = CloseCode(4001, "unauthorized", Reconnect.NO, "credentials refused")
FORBIDDEN_ORIGIN = CloseCode(4003, "forbidden_origin", Reconnect.NO, "origin not allowed")
BAD_FRAMES = CloseCode(4008, "bad_frames", Reconnect.NO, "too many refused frames")
TOO_MANY_REQUESTS = CloseCode(
    4009, "too_many_requests", Reconnect.BACKOFF, "too many frames; slow down")
TOO_MANY_SUBSCRIPTIONS = CloseCode(
    4029, "too_many_subscriptions", Reconnect.NO, "subscription limit reached")

ALL: tuple[CloseCode, ...] = (
    NORMAL, GOING_AWAY, PROTOCOL_ERROR, MESSAGE_TOO_BIG, INTERNAL_ERROR, SERVICE_RESTART,
    SLOW, UNAUTHORIZED, FORBIDDEN_ORIGIN, BAD_FRAMES, TOO_MANY_REQUESTS,
    TOO_MANY_SUBSCRIPTIONS,
)
BY_CODE: dict[int, CloseCode] = {c.code: c for c in ALL}
