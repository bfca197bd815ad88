"""Filtered subscriptions in the hub: a reader of one tag's posts or of the key events
gets every seq, matching posts in full and the others as stubs, live and in replays."""

from __future__ import annotations

import json
from typing import Any

from bulletin.core import protocol
from bulletin.core.hub import Hub
from bulletin.core.prepared import Encoding, PreparedEvent

from .test_hub import FakeOutlet, connect, load

KEY = protocol.PostFilter(pinned=True)
ECONOMY = protocol.PostFilter(tag="economy")


def post_ev(seq: int, post_id: int, op: str = "post.created", *, pinned: bool = False,
            tags: tuple[str, ...] = (), deleted: bool = False) -> PreparedEvent:
    post = {"id": post_id, "body": f"post {post_id}", "pinned": pinned, "tags": list(tags),
            "revision": 1, "deleted": deleted}
    return PreparedEvent.from_payload(json.dumps({
        "type": "event", "stream": "s", "seq": seq, "op": op, "at": f"t{seq}", "post": post}))


def stream_ev(seq: int) -> PreparedEvent:
    return PreparedEvent.from_payload(json.dumps({
        "type": "event", "stream": "s", "seq": seq, "op": "stream.updated", "at": "t",
        "stream_info": {"status": "live", "title": "T"}}))


def shown(out: FakeOutlet) -> list[tuple[int, str, bool]]:
    """(seq, op, full?) of each event the outlet received."""
    return [(f["seq"], f["op"], not f.get("filtered")) for f in out.frames()
            if f["type"] == "event"]


def test_a_filtered_reader_gets_every_seq_with_other_posts_as_stubs() -> None:
    """Live: matching posts in full, others as id-only stubs with their seq and op,
    stream events in full; an unfiltered reader beside it gets everything in full."""
    hub = Hub()
    key_sub, key_out = connect(hub)
    all_sub, all_out = connect(hub)
    load(hub, hub.subscribe(key_sub, "s", None, KEY), seq=0)
    hub.subscribe(all_sub, "s", None)
    hub.events_committed([post_ev(1, 1), post_ev(2, 2, pinned=True)])
    hub.event_committed(stream_ev(3))
    assert shown(key_out) == [(1, "post.created", False), (2, "post.created", True),
                              (3, "stream.updated", True)]
    stub = key_out.frames()[1]
    assert stub == {"type": "event", "stream": "s", "seq": 1, "op": "post.created",
                    "at": "t1", "filtered": True, "post": {"id": 1}}
    assert all(full for _seq, _op, full in shown(all_out))


def test_a_post_that_starts_or_stops_matching_comes_in_full_or_as_a_stub() -> None:
    """Pinning a post sends it in full to the key-events reader; unpinning it sends the
    stub that takes it off the page; a tag added by an edit brings it to the tag's."""
    hub = Hub()
    key_sub, key_out = connect(hub)
    tag_sub, tag_out = connect(hub)
    load(hub, hub.subscribe(key_sub, "s", None, KEY), seq=0)
    hub.subscribe(tag_sub, "s", None, ECONOMY)
    hub.event_committed(post_ev(1, 7))
    hub.event_committed(post_ev(2, 7, "post.pinned", pinned=True))
    hub.event_committed(post_ev(3, 7, "post.edited", pinned=True, tags=("economy",)))
    hub.event_committed(post_ev(4, 7, "post.unpinned", tags=("economy",)))
    assert shown(key_out) == [(1, "post.created", False), (2, "post.pinned", True),
                              (3, "post.edited", True), (4, "post.unpinned", False)]
    assert shown(tag_out) == [(1, "post.created", False), (2, "post.pinned", False),
                              (3, "post.edited", True), (4, "post.unpinned", True)]


def test_a_filtered_replay_applies_the_filter_to_each_posts_current_state() -> None:
    """A reader resuming with a filter gets the window's events through it, each post as
    it is now (restated): a post pinned since its creation comes in full, though a
    filtered reader was sent its creation as a stub before the pin."""
    hub = Hub()
    first, _ = connect(hub)
    load(hub, hub.subscribe(first, "s", None, KEY), seq=0)
    hub.events_committed([post_ev(1, 1), post_ev(2, 2),
                          post_ev(3, 1, "post.pinned", pinned=True)])
    late, out = connect(hub)
    hub.subscribe(late, "s", 0, KEY)
    assert shown(out) == [(1, "post.created", True), (2, "post.created", False),
                          (3, "post.pinned", True)]


def test_filter_groups_share_bytes_and_leave_cleanly() -> None:
    """Readers with the same filter and encoding receive the same bytes object; when the
    last of a group leaves, the group is gone and the stream is unfollowed at the end."""
    hub = Hub()
    a, a_out = connect(hub, encoding=Encoding.FRAME)
    b, b_out = connect(hub, encoding=Encoding.FRAME)
    load(hub, hub.subscribe(a, "s", None, KEY), seq=0)
    hub.subscribe(b, "s", None, protocol.PostFilter(pinned=True))
    hub.event_committed(post_ev(1, 1))
    assert a_out.writes[-1] is b_out.writes[-1]
    channel = hub.channels["s"]
    assert list(channel.filtered) == [(Encoding.FRAME, KEY)]
    hub.unsubscribe(a, "s")
    assert a.filters == {}
    needs = hub.disconnect(b)
    assert "s" not in hub.channels and any(type(n).__name__ == "Unfollow" for n in needs)


def test_subscribe_frames_carry_a_checked_filter() -> None:
    """`filter` takes `tag` (a tag) and `pinned` (a boolean); anything else is refused."""
    frame = protocol.parse('{"type":"subscribe","stream":"s","filter":{"pinned":true}}')
    assert isinstance(frame, protocol.Subscribe) and frame.filter == KEY
    frame = protocol.parse('{"type":"subscribe","stream":"s","since":3,"filter":'
                           '{"tag":"economy","pinned":false}}')
    assert isinstance(frame, protocol.Subscribe) and frame.filter == ECONOMY
    assert protocol.parse('{"type":"subscribe","stream":"s"}').filter == protocol.NO_FILTER  # type: ignore[union-attr]
    bad: list[Any] = [[], {"tag": "Economy"}, {"tag": 3}, {"pinned": "yes"}, {"other": 1}]
    for value in bad:
        text = json.dumps({"type": "subscribe", "stream": "s", "filter": value})
        try:
            protocol.parse(text)
        except protocol.ProtocolError as exc:
            assert exc.code == "bad_filter" and exc.stream == "s"
        else:
            raise AssertionError(f"accepted {value!r}")


def test_filtered_readers_count_as_readers() -> None:
    """A reader of the key events only is a reader of the story (editors' counts)."""
    hub = Hub()
    key_sub, _ = connect(hub)
    all_sub, _ = connect(hub)
    load(hub, hub.subscribe(key_sub, "s", None, KEY), seq=0)
    hub.subscribe(all_sub, "s", None)
    assert hub.follower_counts() == {"s": 2}
    assert hub.follower_counts(excluding=[all_sub]) == {"s": 1}
