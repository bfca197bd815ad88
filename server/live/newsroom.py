"""Who is in the newsroom: editors' presence and reader counts, shared between processes.

``Newsroom`` is the I/O around ``core/presence.py``'s ``PresenceBoard`` and
``core/readercount.py``'s ``ReaderTally``, one per process, driven by ``HubDriver``:

- An editor's ``presence`` frame changes the board; the editor connections of this
  process that follow the stream are sent the new list at once, and the process's own list
  for that stream goes to the others on the broker's ``presence`` channel. Every
  ``presence_seconds`` each process sends all its lists again, and drops the lists of
  processes that did not (after 3 times that): a process that died leaves no ghost.
- Every ``reader_count_seconds`` each process counts its readers of each stream (the
  connections following it, editors' own connections left out), sends the counts on the
  ``readers`` channel, and tells its editor connections a stream's total (its own count
  and the latest of every other process) when it changed.

- When the posts that wait on a stream change (a contributor's post submitted, sent back
  or approved, a post scheduled, rescheduled or cancelled: ``queue_changed``), the editor
  connections here that follow it get a ``queue`` frame, and the other processes hear it
  on the ``queue`` channel and tell theirs. The frame names the stream only; each desk
  reads its own lists again, so a contributor never learns of others' posts.

Messages are whole lists and counts, never differences, so a lost one is mended by the
next (a lost ``queue`` notice is mended when the desk next reads its lists). Nothing
here touches the hub's fan-out of events: these frames go through ``Hub.tell`` to the
few editor connections only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from ..core import protocol
from ..core.hub import Hub, Subscriber
from ..core.needs import Need
from ..core.presence import Doing, EditorRef, PresenceBoard
from ..core.readercount import ReaderTally
from ..settings import Settings
from ..store.models import utcnow
from ..store.payloads import iso
from .brokers import Broker
from .brokers.base import BrokerMessage, BrokerUnavailable

log = logging.getLogger("bulletin.live")

PRESENCE_CHANNEL = "presence"
READERS_CHANNEL = "readers"
QUEUE_CHANNEL = "queue"
CHANNELS = (PRESENCE_CHANNEL, READERS_CHANNEL, QUEUE_CHANNEL)
# A process's lists and counts are dropped after this many intervals without news.
EXPIRY_INTERVALS = 3


class Newsroom:
    """Presence and reader counts for this process, kept in step with the others."""

    def __init__(self, *, hub: Hub, broker: Broker, settings: Settings,
                 run: Callable[[Iterable[Need]], None]) -> None:
        self.hub = hub
        self.broker = broker
        self.settings = settings
        self._run = run
        # This process, as the others know it.
        self.origin = uuid.uuid4().hex
        self.board = PresenceBoard(ttl=EXPIRY_INTERVALS * settings.presence_seconds)
        self.tally = ReaderTally(ttl=EXPIRY_INTERVALS * settings.reader_count_seconds)
        # Every editor connection here (WebSocket or SSE): not counted as readers.
        self._editors: dict[Subscriber, None] = {}
        # Streams whose list the other processes must be sent.
        self._outbox: dict[str, None] = {}
        self._send_now = asyncio.Event()

    # --- connections ---------------------------------------------------------------------

    def connected(self, sub: Subscriber, who: EditorRef | None) -> None:
        """A connection opened; ``who`` for a WebSocket editor's (who may send presence)."""
        if sub.drafts:
            self._editors[sub] = None
        if who is not None:
            self.board.join(sub, who)

    def declare(self, sub: Subscriber, frame: protocol.Presence) -> None:
        """An editor says what they are doing; a reader is refused."""
        slug = frame.stream
        if not self.board.is_editor(sub):
            self.hub.refuse(sub, "editors_only",
                            "presence is for editors: sign in to the desk or send an API token",
                            slug)
            return
        if slug not in sub.streams:
            self.hub.refuse(sub, "not_subscribed",
                            f"subscribe to {slug!r} before saying what you do there", slug)
            return
        if self.board.declare(sub, slug, frame.post, frame.state, _now_iso()):
            self._changed((slug,))

    def left(self, sub: Subscriber, slug: str) -> None:
        """A connection stopped following ``slug`` (after the hub took it off)."""
        if self.board.leave(sub, slug):
            self._changed((slug,))

    def gone(self, sub: Subscriber) -> None:
        """A connection closed (after the hub forgot it)."""
        self._editors.pop(sub, None)
        self._changed(self.board.gone(sub))

    def joined(self, sub: Subscriber, slug: str) -> None:
        """An editor connection is live on ``slug``: who is there, how many read."""
        frame = self.board.newcomer(sub, slug)
        if frame is None:
            return  # an SSE editor: no presence there
        self._run(self.hub.tell((sub,), frame, kind="presence"))
        count = self.readers((slug,))[slug]
        self._run(self.hub.tell((sub,), protocol.readers(slug, count), kind="readers"))

    def readers(self, slugs: Iterable[str]) -> dict[str, int]:
        """Readers of each stream on every process: this one's now, the others' as of
        their latest count."""
        self.tally.expire(_clock())
        local = self._local_counts()
        return {slug: self.tally.total(slug, local) for slug in slugs}

    async def queue_changed(self, slugs: Iterable[str]) -> None:
        """The posts that wait on ``slugs`` changed: tell the editors here, then the
        other processes."""
        streams = sorted(set(slugs))
        if not streams:
            return
        self._tell_queue(streams)
        await self._publish(QUEUE_CHANNEL, {"process": self.origin, "streams": streams})

    # --- between processes ---------------------------------------------------------------

    def received(self, message: BrokerMessage) -> None:
        """A message on one of ``CHANNELS`` from a process (this one's own are skipped)."""
        try:
            data = json.loads(message.payload)
            origin = data["process"]
            if origin == self.origin:
                return
            if not isinstance(origin, str):
                raise ValueError("process must be a string")
            if message.channel == PRESENCE_CHANNEL:
                slug = data["stream"]
                if not isinstance(slug, str) or not protocol.SLUG_RE.match(slug):
                    raise ValueError("not a stream")
                entries = [Doing.from_json(e) for e in data["entries"]]
                self.board.received(origin, slug, entries, _clock())
                self._tell(self.board.changes((slug,)))
            elif message.channel == QUEUE_CHANNEL:
                streams = data["streams"]
                if not isinstance(streams, list) or not all(
                        isinstance(s, str) and protocol.SLUG_RE.match(s) for s in streams):
                    raise ValueError("streams must be a list of stream slugs")
                self._tell_queue(streams)
            else:
                counts = data["counts"]
                if not isinstance(counts, dict) or not all(
                        isinstance(k, str) and isinstance(v, int) for k, v in counts.items()):
                    raise ValueError("counts must map streams to numbers")
                self.tally.received(origin, counts, _clock())
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropped a malformed %s message: %s", message.channel, exc)

    async def run(self) -> None:
        """Send this process's lists and counts, and drop stale ones, for ever."""
        await asyncio.gather(self._presence_loop(), self._readers_loop())

    async def _presence_loop(self) -> None:
        interval = self.settings.presence_seconds
        loop = asyncio.get_running_loop()
        refresh_at = loop.time() + interval
        while True:
            try:
                await asyncio.wait_for(self._send_now.wait(), max(0.0, refresh_at - loop.time()))
            except TimeoutError:
                pass
            self._send_now.clear()
            if loop.time() >= refresh_at:
                refresh_at = loop.time() + interval
                for slug in self.board.local_streams():
                    self._outbox[slug] = None
                self._tell(self.board.changes(self.board.expire(_clock())))
            outbox, self._outbox = self._outbox, {}
            for slug in outbox:
                await self._publish(PRESENCE_CHANNEL, {
                    "process": self.origin, "stream": slug, "entries": self.board.local(slug)})

    async def _readers_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reader_count_seconds)
            local = self._local_counts()
            await self._publish(READERS_CHANNEL, {
                "process": self.origin, "counts": {s: n for s, n in local.items() if n > 0}})
            self.tally.expire(_clock())
            for slug, count in self.tally.changes(self.board.watched(), local).items():
                self._run(self.hub.tell(self.board.watchers(slug), protocol.readers(slug, count),
                                        kind="readers"))

    # --- internals -----------------------------------------------------------------------

    def _changed(self, slugs: Iterable[str]) -> None:
        """This process's lists for ``slugs`` changed: tell editors here, then the others."""
        slugs = list(slugs)
        if not slugs:
            return
        self._tell(self.board.changes(slugs))
        for slug in slugs:
            self._outbox[slug] = None
        self._send_now.set()

    def _tell(self, frames: list[tuple[list[Any], bytes]]) -> None:
        for subs, frame in frames:
            self._run(self.hub.tell(subs, frame, kind="presence"))

    def _tell_queue(self, slugs: Iterable[str]) -> None:
        for slug in slugs:
            watchers = self.board.watchers(slug)
            if watchers:
                self._run(self.hub.tell(watchers, protocol.queue(slug), kind="queue"))

    def _local_counts(self) -> dict[str, int]:
        return self.hub.follower_counts(excluding=self._editors)

    async def _publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self.broker.publish(channel, json.dumps(message, separators=(",", ":")))
        except BrokerUnavailable:
            pass  # sent again at the next interval; the others' copies expire meanwhile
        except Exception as exc:
            log.warning("could not publish on the %s channel: %r", channel, exc)


def _now_iso() -> str:
    since = iso(utcnow())
    assert since is not None
    return since


def _clock() -> float:
    return asyncio.get_running_loop().time()
