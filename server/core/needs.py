"""What the hub asks of the layer that drives it, and what that layer answers.

The hub does no I/O: each of its calls returns the ``Need``s it created — database reads,
broker channels to follow or leave, an editor to tell who else is on a stream — and the
driver (``live/driver.py``) carries them out and answers with ``Hub.stream_loaded``,
``Hub.events_loaded`` and their failures.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadStream:
    """Follow the stream's broker channel, then read its status, seq and newest events.

    ``token`` identifies the channel that asked; answer with it in ``stream_loaded``.
    """

    stream: str
    token: int


@dataclass(frozen=True, slots=True)
class LoadEvents:
    """Read the stream's events with seq > ``after`` (at most ``limit``).

    ``repair``: the read mends a gap in what live subscribers receive (it must succeed
    eventually: retry while the database is away); otherwise it serves subscribers
    waiting for their replay, and may fail (answer with ``events_failed``).
    """

    stream: str
    after: int
    limit: int
    repair: bool = False


@dataclass(frozen=True, slots=True)
class CancelLoad:
    """Nobody waits for the stream's LoadStream any more: stop it if it has not begun
    reading, and answer with ``load_abandoned``; a read under way is left to finish."""

    stream: str
    token: int


@dataclass(frozen=True, slots=True)
class Unfollow:
    """Nobody here follows the stream any more: leave its broker channel."""

    stream: str


@dataclass(frozen=True, slots=True)
class Joined:
    """An editor's connection (``drafts``) is now live on the stream: tell it who else
    is there (presence) and how many read it. Never made for readers' connections."""

    stream: str
    subscriber: Hashable


Need = LoadStream | LoadEvents | CancelLoad | Unfollow | Joined


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the database says about a stream when the hub starts following it."""

    status: str
    seq: int
