"""The presence board: who is on a story, merged over processes, expiring, only to editors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bulletin.core.presence import Doing, EditorRef, PresenceBoard


class Conn:
    """A connection as the board sees it: what it follows (True once live)."""

    def __init__(self, *live: str) -> None:
        self.streams: dict[str, bool] = dict.fromkeys(live, True)


ADA = EditorRef(1, "Ada")
BO = EditorRef(2, "Bo")


def frames(board: PresenceBoard, *slugs: str) -> list[tuple[list[Any], dict[str, Any]]]:
    return [(subs, json.loads(frame)) for subs, frame in board.changes(slugs)]


def test_editors_see_each_other_and_only_changes_are_sent() -> None:
    """A declaration goes to the editors live on the stream, once; saying the same thing
    again keeps its ``since`` and sends nothing."""
    board = PresenceBoard(ttl=15)
    a, b, elsewhere = Conn("s"), Conn("s"), Conn("t")
    for conn, who in ((a, ADA), (b, BO), (elsewhere, BO)):
        board.join(conn, who)
    assert board.declare(a, "s", 7, "editing", "2026-01-01T10:00:00.000Z")
    [(subs, frame)] = frames(board, "s")
    assert set(subs) == {a, b}
    assert frame == {"type": "presence", "stream": "s", "editors": [
        {"editor": 1, "name": "Ada", "post": 7, "state": "editing",
         "since": "2026-01-01T10:00:00.000Z"}]}
    assert not board.declare(a, "s", 7, "editing", "2026-01-01T10:05:00.000Z")
    assert frames(board, "s") == []
    assert board.editors("s")[0]["since"] == "2026-01-01T10:00:00.000Z"


def test_moving_on_leaving_and_closing_end_an_entry() -> None:
    """A new declaration replaces the old; unsubscribing or closing removes it."""
    board = PresenceBoard(ttl=15)
    a, b = Conn("s", "t"), Conn("s")
    board.join(a, ADA)
    board.join(b, BO)
    board.declare(a, "s", 7, "editing", "t1")
    board.declare(a, "s", None, "viewing", "t2")
    assert [(e["post"], e["state"]) for e in board.editors("s")] == [(None, "viewing")]
    board.declare(a, "t", None, "viewing", "t2")
    assert board.leave(a, "s")
    assert board.editors("s") == []
    assert not board.leave(a, "s")
    assert board.gone(a) == ["t"]
    assert board.editors("t") == []
    assert board.gone(a) == []


def test_readers_are_never_watchers_and_get_no_list() -> None:
    """Only connections that joined as editors are sent presence."""
    board = PresenceBoard(ttl=15)
    editor, reader = Conn("s"), Conn("s")
    board.join(editor, ADA)
    board.declare(editor, "s", None, "viewing", "t1")
    assert board.watchers("s") == [editor]
    assert board.newcomer(reader, "s") is None
    assert json.loads(board.newcomer(editor, "s") or b"")["editors"][0]["name"] == "Ada"


def test_a_connection_not_live_yet_is_not_sent_the_list() -> None:
    """A connection waiting for its replay gets presence only once live (``newcomer``)."""
    board = PresenceBoard(ttl=15)
    waiting = Conn()
    waiting.streams["s"] = False
    board.join(waiting, ADA)
    board.declare(waiting, "s", None, "viewing", "t1")
    assert frames(board, "s") == []


def test_other_processes_lists_merge_and_expire() -> None:
    """Another process's list replaces its previous one and expires after ``ttl``; one
    editor doing the same in two tabs is listed once, with the earliest since."""
    board = PresenceBoard(ttl=15)
    here = Conn("s")
    board.join(here, ADA)
    board.declare(here, "s", 3, "editing", "t2")
    board.received("p2", "s", [Doing(1, "Ada", 3, "editing", "t1"),
                               Doing(2, "Bo", None, "viewing", "t3")], now=100)
    assert [(e["name"], e["since"]) for e in board.editors("s")] == [("Ada", "t1"), ("Bo", "t3")]
    board.received("p2", "s", [Doing(2, "Bo", 3, "editing", "t4")], now=105)
    assert [(e["name"], e["post"]) for e in board.editors("s")] == [("Ada", 3), ("Bo", 3)]
    assert board.expire(119) == []
    assert board.expire(120) == ["s"]
    assert [e["name"] for e in board.editors("s")] == ["Ada"]
    board.received("p3", "s", [Doing(2, "Bo", None, "viewing", "t5")], now=130)
    board.received("p3", "s", [], now=131)
    assert [e["name"] for e in board.editors("s")] == ["Ada"]


@pytest.mark.parametrize("entry", [
    None, [], {"editor": 1, "name": "A", "post": None, "state": "typing", "since": "t"},
    {"editor": True, "name": "A", "post": None, "state": "viewing", "since": "t"},
    {"editor": 1, "name": 5, "post": None, "state": "viewing", "since": "t"},
    {"editor": 1, "name": "A", "post": "3", "state": "viewing", "since": "t"},
    {"editor": 1, "name": "A", "post": None, "state": "viewing"},
])
def test_malformed_entries_from_the_broker_are_refused(entry: Any) -> None:
    """An entry that is not one raises ValueError (the relay drops its message)."""
    with pytest.raises(ValueError):
        Doing.from_json(entry)


def test_entries_round_trip_through_json() -> None:
    """What one process sends, another reads back equal."""
    doing = Doing(1, "Ada", None, "viewing", "t")
    assert Doing.from_json(json.loads(json.dumps(doing.to_json()))) == doing
