"""Client frames in, server frames out."""

from __future__ import annotations

import json

import pytest

from bulletin.core import protocol
from bulletin.core.protocol import Presence, ProtocolError, Subscribe, Unsubscribe


@pytest.mark.parametrize(("text", "frame"), [
    ('{"type":"subscribe","stream":"a"}', Subscribe("a", None)),
    ('{"type":"subscribe","stream":"a-b","since":null}', Subscribe("a-b", None)),
    ('{"type":"subscribe","stream":"a","since":0}', Subscribe("a", 0)),
    ('{"type":"subscribe","stream":"a","since":42}', Subscribe("a", 42)),
    ('{"type":"unsubscribe","stream":"a"}', Unsubscribe("a")),
    ('{"type":"presence","stream":"a","post":null,"state":"viewing"}',
     Presence("a", None, "viewing")),
    ('{"type":"presence","stream":"a","state":"viewing"}', Presence("a", None, "viewing")),
    ('{"type":"presence","stream":"a","post":7,"state":"viewing"}', Presence("a", 7, "viewing")),
    ('{"type":"presence","stream":"a","post":7,"state":"editing"}', Presence("a", 7, "editing")),
])
def test_good_frames_parse(text: str, frame: object) -> None:
    """Well-formed subscribe, unsubscribe and presence frames parse."""
    assert protocol.parse(text) == frame


@pytest.mark.parametrize(("text", "code"), [
    ("not json", "bad_json"),
    ("", "bad_json"),
    ("[1]", "bad_frame"),
    ('"subscribe"', "bad_frame"),
    ('{"stream":"a"}', "unknown_type"),
    ('{"type":"publish","stream":"a"}', "unknown_type"),
    ('{"type":"subscribe"}', "bad_stream"),
    ('{"type":"subscribe","stream":""}', "bad_stream"),
    ('{"type":"subscribe","stream":"A B"}', "bad_stream"),
    ('{"type":"subscribe","stream":7}', "bad_stream"),
    ('{"type":"subscribe","stream":"a","since":-1}', "bad_since"),
    ('{"type":"subscribe","stream":"a","since":"3"}', "bad_since"),
    ('{"type":"subscribe","stream":"a","since":1.5}', "bad_since"),
    ('{"type":"subscribe","stream":"a","since":true}', "bad_since"),
    ('{"type":"subscribe","stream":"a","since":1e300}', "bad_since"),
    ('{"type":"subscribe","stream":"a","since":99999999999999999999}', "bad_since"),
    ('{"type":"subscribe","stream":"a","extra":1}', "bad_frame"),
    ('{"type":"unsubscribe","stream":"a","since":1}', "bad_frame"),
    ('{"type":"presence","post":1,"state":"editing"}', "bad_stream"),
    ('{"type":"presence","stream":"a","post":1}', "bad_presence"),
    ('{"type":"presence","stream":"a","post":1,"state":"typing"}', "bad_presence"),
    ('{"type":"presence","stream":"a","post":null,"state":"editing"}', "bad_presence"),
    ('{"type":"presence","stream":"a","post":0,"state":"viewing"}', "bad_presence"),
    ('{"type":"presence","stream":"a","post":"3","state":"editing"}', "bad_presence"),
    ('{"type":"presence","stream":"a","post":true,"state":"editing"}', "bad_presence"),
    ('{"type":"presence","stream":"a","post":1,"state":"editing","name":"x"}', "bad_frame"),
])
def test_bad_frames_are_refused_with_a_code(text: str, code: str) -> None:
    """Each kind of bad frame is refused with its own error code."""
    with pytest.raises(ProtocolError) as caught:
        protocol.parse(text)
    assert caught.value.code == code
    assert caught.value.message


def test_server_frames_are_compact_json() -> None:
    """Server frames are the JSON objects the protocol documents."""
    assert json.loads(protocol.subscribed("a", 3)) == {"type": "subscribed", "stream": "a",
                                                       "seq": 3}
    assert json.loads(protocol.reset("a", 9)) == {"type": "reset", "stream": "a", "seq": 9}
    assert json.loads(protocol.error("x", "y")) == {"type": "error", "code": "x",
                                                    "message": "y"}
    assert json.loads(protocol.HEARTBEAT) == {"type": "heartbeat"}
    assert json.loads(protocol.presence("a", [])) == {"type": "presence", "stream": "a",
                                                      "editors": []}
    assert json.loads(protocol.readers("a", 4)) == {"type": "readers", "stream": "a",
                                                    "count": 4}
    assert b" " not in protocol.subscribed("a", 3)


def test_sse_record_without_id_keeps_last_event_id() -> None:
    """Control records carry no id, so EventSource's Last-Event-ID stays the last seq."""
    assert protocol.sse_event(b"{}", event="subscribed") == b"event: subscribed\ndata: {}\n\n"
    assert protocol.sse_event(b"{}", event="post.created", id=4).startswith(b"id: 4\n")
