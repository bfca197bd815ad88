"""Presence: which editors are on a story, and what each is editing. No I/O.

``PresenceBoard`` is one per process. It knows this process's editor connections (the
WebSocket connections that authenticated as an editor: ``join``), what each said it is
doing on each stream it follows (``declare``), and what the other processes said about
their own editors (``received``: a process's whole list for a stream, which replaces its
previous one and expires ``ttl`` seconds after it arrived unless the process sends it
again). A process that dies therefore leaves no ghost for longer than ``ttl``; the
driver's relay re-sends each process's lists well within it.

An entry ends when its connection closes (``gone``), unsubscribes (``leave``), or says
something else (a new ``declare`` replaces it). What editors see is ``editors(slug)``:
every process's entries merged, one per editor, post and state (the earliest ``since``
when an editor has two tabs doing the same thing), oldest first. ``changes`` turns the
streams that may have changed into the frames to write: only when the list really
differs from the one last sent, and only to editor connections live on that stream;
readers' connections are never registered here, so they can never be sent one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

from . import protocol
from .protocol import PRESENCE_STATES


@dataclass(frozen=True, slots=True)
class EditorRef:
    """Who an editor connection belongs to, as other editors see them."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Doing:
    """What one editor connection is doing on a stream, and since when (ISO 8601)."""

    editor: int
    name: str
    post: int | None
    state: str
    since: str

    def to_json(self) -> dict[str, Any]:
        """The entry as the ``presence`` frame's ``editors`` lists it."""
        return {"editor": self.editor, "name": self.name, "post": self.post,
                "state": self.state, "since": self.since}

    @classmethod
    def from_json(cls, data: Any) -> Doing:
        """An entry another process sent; ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("a presence entry must be an object")
        editor, name, post = data.get("editor"), data.get("name"), data.get("post")
        state, since = data.get("state"), data.get("since")
        if (not _is_id(editor) or not isinstance(name, str) or not isinstance(since, str)
                or state not in PRESENCE_STATES or not (post is None or _is_id(post))):
            raise ValueError(f"not a presence entry: {data!r}"[:200])
        return cls(editor, name, post, state, since)


def _is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class PresenceBoard:
    """Every editor's presence on every stream, as this process knows it."""

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        # This process's editor connections (opaque keys: the hub's subscribers, which
        # say what they follow in ``streams``).
        self._editors: dict[Any, EditorRef] = {}
        # slug → connection → what it said.
        self._local: dict[str, dict[Any, Doing]] = {}
        # slug → process → (when its list expires, its list).
        self._remote: dict[str, dict[str, tuple[float, tuple[Doing, ...]]]] = {}
        # slug → the frame last written to its watchers.
        self._shown: dict[str, bytes] = {}

    # --- this process's connections ----------------------------------------------------

    def join(self, conn: Hashable, who: EditorRef) -> None:
        """An editor's connection opened."""
        self._editors[conn] = who

    def is_editor(self, conn: Hashable) -> bool:
        """Whether ``conn`` joined as an editor."""
        return conn in self._editors

    def declare(self, conn: Hashable, slug: str, post: int | None, state: str,
                since: str) -> bool:
        """``conn`` says what it is doing on ``slug``; True when that is news. Saying the
        same thing again keeps the entry's ``since``."""
        who = self._editors[conn]
        entries = self._local.setdefault(slug, {})
        old = entries.get(conn)
        if old is not None and old.post == post and old.state == state:
            return False
        entries[conn] = Doing(who.id, who.name, post, state, since)
        return True

    def leave(self, conn: Hashable, slug: str) -> bool:
        """``conn`` no longer follows ``slug``; True when it had an entry there."""
        entries = self._local.get(slug)
        if entries is None or entries.pop(conn, None) is None:
            return False
        if not entries:
            del self._local[slug]
        return True

    def gone(self, conn: Hashable) -> list[str]:
        """``conn`` closed: the streams where it had an entry."""
        if self._editors.pop(conn, None) is None:
            return []
        return [slug for slug in list(self._local) if self.leave(conn, slug)]

    def local(self, slug: str) -> list[dict[str, Any]]:
        """This process's entries for ``slug``, to send to the other processes."""
        return [d.to_json() for d in self._local.get(slug, {}).values()]

    def local_streams(self) -> list[str]:
        """The streams where this process has entries."""
        return list(self._local)

    # --- other processes -----------------------------------------------------------------

    def received(self, origin: str, slug: str, entries: Iterable[Doing], now: float) -> None:
        """Process ``origin``'s whole list for ``slug``, valid until ``now + ttl``."""
        found = tuple(entries)
        processes = self._remote.setdefault(slug, {})
        if found:
            processes[origin] = (now + self.ttl, found)
        else:
            processes.pop(origin, None)
            if not processes:
                del self._remote[slug]

    def expire(self, now: float) -> list[str]:
        """Forget the lists that were not sent again in time; the streams they were on."""
        touched = []
        for slug, processes in list(self._remote.items()):
            stale = [origin for origin, (until, _) in processes.items() if until <= now]
            for origin in stale:
                del processes[origin]
            if stale:
                touched.append(slug)
            if not processes:
                del self._remote[slug]
        return touched

    # --- what editors are shown ----------------------------------------------------------

    def editors(self, slug: str) -> list[dict[str, Any]]:
        """Every editor on ``slug``, one entry per editor, post and state, oldest first."""
        merged: dict[tuple[int, int | None, str], Doing] = {}
        everyone = list(self._local.get(slug, {}).values())
        for _, entries in self._remote.get(slug, {}).values():
            everyone.extend(entries)
        for doing in everyone:
            key = (doing.editor, doing.post, doing.state)
            kept = merged.get(key)
            if kept is None or doing.since < kept.since:
                merged[key] = doing
        return [d.to_json() for d in sorted(merged.values(),
                                             key=lambda d: (d.since, d.editor, d.post or 0))]

    def watchers(self, slug: str) -> list[Any]:
        """This process's editor connections that are live on ``slug``."""
        return [conn for conn in self._editors if conn.streams.get(slug) is True]

    def watched(self) -> set[str]:
        """The streams that some editor connection here is live on."""
        return {slug for conn in self._editors
                for slug, live in conn.streams.items() if live}

    def changes(self, slugs: Iterable[str]) -> list[tuple[list[Any], bytes]]:
        """The ``presence`` frames to write, and to whom, for the streams in ``slugs``
        whose list differs from the one last written there."""
        out = []
        for slug in dict.fromkeys(slugs):
            frame = protocol.presence(slug, self.editors(slug))
            if self._shown.get(slug) == frame:
                continue
            watchers = self.watchers(slug)
            if watchers:
                self._shown[slug] = frame
                out.append((watchers, frame))
            else:
                # Nobody here to tell: whoever comes is sent the list as it is then.
                self._shown.pop(slug, None)
        return out

    def newcomer(self, conn: Hashable, slug: str) -> bytes | None:
        """The frame for an editor connection that has just become live on ``slug``
        (None for a reader's)."""
        if conn not in self._editors:
            return None
        frame = protocol.presence(slug, self.editors(slug))
        self._shown.setdefault(slug, frame)
        return frame
