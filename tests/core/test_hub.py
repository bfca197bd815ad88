"""The hub's state machine, driven by plain calls: no sockets, no event loop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bulletin.core import closecodes, protocol
from bulletin.core.closecodes import CloseCode
from bulletin.core.hub import Hub, Subscriber
from bulletin.core.needs import (
    CancelLoad,
    Joined,
    LoadEvents,
    LoadStream,
    Need,
    StreamInfo,
    Unfollow,
)
from bulletin.core.prepared import Encoding, PreparedEvent


class FakeOutlet:
    """Records writes; counts unsent bytes until ``flush``."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.unsent = 0
        self.closed: CloseCode | None = None

    def write(self, data: bytes) -> int:
        assert self.closed is None, "write after close"
        self.writes.append(data)
        self.unsent += len(data)
        return self.unsent

    def close(self, code: CloseCode) -> None:
        self.closed = code

    def flush(self) -> None:
        self.unsent = 0

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(w) for w in self.writes]

    def seqs(self, stream: str = "s") -> list[int]:
        return [f["seq"] for f in self.frames() if f["type"] == "event" and f["stream"] == stream]

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames()]


def ev(seq: int, stream: str = "s", op: str = "post.created",
       status: str | None = None) -> PreparedEvent:
    data: dict[str, Any] = {"type": "event", "stream": stream, "seq": seq, "op": op}
    if status is not None:
        data["stream_info"] = {"status": status}
    else:
        data["post"] = {"id": seq, "body": "x" * 20}
    return PreparedEvent.from_payload(json.dumps(data))


def evs(first: int, last: int, stream: str = "s") -> list[PreparedEvent]:
    return [ev(n, stream) for n in range(first, last + 1)]


def connect(hub: Hub, drafts: bool = False,
            encoding: Encoding = Encoding.MESSAGE) -> tuple[Subscriber, FakeOutlet]:
    outlet = FakeOutlet()
    return hub.connect(outlet, encoding, drafts=drafts), outlet


def load(hub: Hub, needs: list[Need], *, seq: int, status: str = "live",
         stream: str = "s", window: int | None = None) -> list[Need]:
    """Answer the LoadStream in ``needs`` with a stream at ``seq`` and its newest events."""
    (need,) = [n for n in needs if isinstance(n, LoadStream)]
    first = max(1, seq - (window or hub.window_size) + 1)
    return hub.stream_loaded(stream, need.token, StreamInfo(status, seq), evs(first, seq, stream))


def live_hub(seq: int = 10, **kwargs: Any) -> tuple[Hub, Subscriber, FakeOutlet]:
    """A hub following stream 's' at ``seq`` with one live subscriber."""
    hub = Hub(**kwargs)
    sub, out = connect(hub)
    load(hub, hub.subscribe(sub, "s", None), seq=seq)
    return hub, sub, out


# --- handshake ---------------------------------------------------------------------------


def test_first_subscriber_asks_to_follow_and_load_the_stream() -> None:
    """The first subscribe to a stream asks for the channel and the stream's state."""
    hub = Hub()
    sub, out = connect(hub)
    needs = hub.subscribe(sub, "s", None)
    assert [type(n) for n in needs] == [LoadStream]
    assert out.writes == []
    assert load(hub, needs, seq=4) == []
    assert out.frames() == [{"type": "subscribed", "stream": "s", "seq": 4}]


def test_second_subscriber_is_served_without_any_read() -> None:
    """A stream already followed answers a new subscriber from memory at once."""
    hub, _, _ = live_hub(seq=10)
    sub, out = connect(hub)
    assert hub.subscribe(sub, "s", 7) == []
    assert out.types() == ["subscribed", "event", "event", "event"]
    assert out.seqs() == [8, 9, 10]


def test_live_events_during_load_are_sent_after_replay_without_duplicates() -> None:
    """Events published while the stream loads follow the replay once, in order."""
    hub = Hub()
    sub, out = connect(hub)
    needs = hub.subscribe(sub, "s", 3)
    hub.event_committed(ev(6))   # committed after the read below: arrives early
    hub.event_committed(ev(5))   # committed before the read but published after registration
    load(hub, needs, seq=5)
    hub.event_committed(ev(6))   # the broker's copy of an event already delivered
    hub.event_committed(ev(7))
    assert out.types()[0] == "subscribed"
    assert out.frames()[0]["seq"] == 6
    assert out.seqs() == [4, 5, 6, 7]


def test_resume_older_than_window_waits_for_the_database() -> None:
    """A resume behind the window reads once and gets no live event before its replay."""
    hub, _, _ = live_hub(seq=100, window=10)
    sub, out = connect(hub)
    needs = hub.subscribe(sub, "s", 50)
    assert needs == [LoadEvents("s", 50, hub.replay_limit + 10)]
    hub.event_committed(ev(101))
    assert out.writes == []
    hub.events_loaded("s", 50, evs(51, 101))
    hub.event_committed(ev(102))
    assert out.frames()[0] == {"type": "subscribed", "stream": "s", "seq": 101}
    assert out.seqs() == list(range(51, 103))


def test_concurrent_resumes_share_one_read() -> None:
    """Resumes that need the database while a covering read is in flight join it."""
    hub, _, _ = live_hub(seq=100, window=10)
    outs = []
    needs: list[Need] = []
    for since in (40, 60, 45, 89):
        sub, out = connect(hub)
        needs += hub.subscribe(sub, "s", since)
        outs.append(out)
    assert needs == [LoadEvents("s", 40, hub.replay_limit + 10)]
    hub.events_loaded("s", 40, evs(41, 100))
    for out, since in zip(outs, (40, 60, 45, 89), strict=True):
        assert out.seqs() == list(range(since + 1, 101))


def test_earlier_resume_starts_its_own_read() -> None:
    """A resume further back than the read in flight asks for its own."""
    hub, _, _ = live_hub(seq=100, window=10)
    a, out_a = connect(hub)
    b, out_b = connect(hub)
    assert hub.subscribe(a, "s", 60) == [LoadEvents("s", 60, hub.replay_limit + 10)]
    assert hub.subscribe(b, "s", 30) == [LoadEvents("s", 30, hub.replay_limit + 10)]
    hub.events_loaded("s", 60, evs(61, 100))
    assert out_a.seqs() == list(range(61, 101))
    assert out_b.writes == []
    hub.events_loaded("s", 30, evs(31, 100))
    assert out_b.seqs() == list(range(31, 101))


def test_window_overrun_during_read_reads_again() -> None:
    """If more events than the window holds arrive during a read, the waiter reads again."""
    hub, _, _ = live_hub(seq=20, window=5)
    sub, out = connect(hub)
    assert hub.subscribe(sub, "s", 10) == [LoadEvents("s", 10, hub.replay_limit + 5)]
    for seq in range(21, 31):
        hub.event_committed(ev(seq))
    needs = hub.events_loaded("s", 10, evs(11, 20))
    assert needs == [LoadEvents("s", 10, hub.replay_limit + 5)]
    assert out.writes == []
    hub.events_loaded("s", 10, evs(11, 30))
    assert out.seqs() == list(range(11, 31))


def test_since_beyond_replay_limit_answers_reset() -> None:
    """A resume further back than the replay limit gets reset with the current seq."""
    hub, _, _ = live_hub(seq=2000, replay_limit=1000)
    sub, out = connect(hub)
    assert hub.subscribe(sub, "s", 999) == []
    assert out.frames() == [{"type": "reset", "stream": "s", "seq": 2000}]
    assert sub.streams == {}
    assert len(hub.subscribe(sub, "s", 1000)) == 1
    hub.events_loaded("s", 1000, evs(1001, 2000))
    assert out.types()[1] == "subscribed"
    assert out.seqs() == list(range(1001, 2001))


def test_since_ahead_checks_the_database_then_resets() -> None:
    """A client ahead of this process is served if the database agrees, else reset."""
    hub, _, _ = live_hub(seq=10)
    sub, out = connect(hub)
    assert hub.subscribe(sub, "s", 11) == [LoadEvents("s", 10, hub.replay_limit + hub.window_size)]
    hub.events_loaded("s", 10, evs(11, 11))
    assert out.frames() == [{"type": "subscribed", "stream": "s", "seq": 11}]
    other, out2 = connect(hub)
    hub.subscribe(other, "s", 50)
    hub.events_loaded("s", 11, [])
    assert out2.frames() == [{"type": "reset", "stream": "s", "seq": 11}]


# --- ordering --------------------------------------------------------------------------


def test_duplicate_and_old_events_are_dropped() -> None:
    """The broker's duplicates and stale events never reach a subscriber twice."""
    hub, _, out = live_hub(seq=10)
    for seq in (11, 11, 5, 12, 12):
        hub.event_committed(ev(seq))
    assert out.seqs() == [11, 12]


def test_gap_is_repaired_from_the_database_before_later_events() -> None:
    """A jump in seq holds later events back until the missing ones are read."""
    hub, _, out = live_hub(seq=10)
    assert hub.event_committed(ev(13)) == [
        LoadEvents("s", 10, hub.replay_limit + hub.window_size, repair=True)]
    assert hub.event_committed(ev(14)) == []  # the read in flight covers it
    assert out.seqs() == []
    hub.events_loaded("s", 10, evs(11, 13))
    assert out.seqs() == [11, 12, 13, 14]
    hub.event_committed(ev(15))
    assert out.seqs() == [11, 12, 13, 14, 15]


def test_gap_still_open_after_a_read_reads_again() -> None:
    """A read that does not close the gap (replica lag) is followed by another."""
    hub, _, out = live_hub(seq=10)
    hub.event_committed(ev(13))
    assert hub.events_loaded("s", 10, evs(11, 11)) == [
        LoadEvents("s", 11, hub.replay_limit + hub.window_size, repair=True)]
    assert out.seqs() == [11]
    hub.events_loaded("s", 11, evs(12, 13))
    assert out.seqs() == [11, 12, 13]


def test_resync_reads_every_followed_stream_after_its_head() -> None:
    """After the broker may have lost events, each followed stream is read after its
    head, even with a read in flight, and what was missed goes out once, in order."""
    hub, _, out = live_hub(seq=10)
    sub_t, out_t = connect(hub)
    load(hub, hub.subscribe(sub_t, "t", None), seq=3, stream="t")
    limit = hub.replay_limit + hub.window_size
    assert sorted(hub.resync(), key=str) == [LoadEvents("s", 10, limit, repair=True),
                                             LoadEvents("t", 3, limit, repair=True)]
    hub.events_loaded("s", 10, evs(11, 12))
    hub.events_loaded("t", 3, [])
    hub.event_committed(ev(12))  # the broker's late copy
    assert out.seqs() == [11, 12] and out_t.seqs("t") == []


def test_resync_during_a_stream_load_reads_again_after_it() -> None:
    """A resync while a stream's first read is in flight reads again once it answers:
    that read may predate the broker's new subscription."""
    hub = Hub()
    sub, out = connect(hub)
    needs = hub.subscribe(sub, "s", None)
    assert hub.resync() == []
    assert load(hub, needs, seq=5) == [
        LoadEvents("s", 5, hub.replay_limit + hub.window_size, repair=True)]
    hub.events_loaded("s", 5, evs(6, 7))
    assert out.seqs() == [6, 7]


def test_a_full_page_of_missed_events_reads_the_next_page() -> None:
    """After a long outage, a repair that fills a whole page asks for the next one."""
    hub, _, out = live_hub(seq=10, replay_limit=5, window=5)
    assert hub.resync() == [LoadEvents("s", 10, 10, repair=True)]
    assert hub.events_loaded("s", 10, evs(11, 20)) == [LoadEvents("s", 20, 10, repair=True)]
    assert hub.events_loaded("s", 20, evs(21, 23)) == []
    assert out.seqs() == list(range(11, 24))


def test_events_for_unfollowed_streams_are_ignored() -> None:
    """An event for a stream nobody here follows is dropped without a read."""
    hub, _, out = live_hub(seq=10)
    assert hub.event_committed(ev(1, stream="other")) == []
    assert out.seqs() == []


def test_each_stream_keeps_its_own_order() -> None:
    """One connection following two streams gets each stream's events in its own order."""
    hub = Hub()
    sub, out = connect(hub)
    load(hub, hub.subscribe(sub, "a", None), seq=0, stream="a")
    load(hub, hub.subscribe(sub, "b", None), seq=5, stream="b")
    for event in (ev(1, "a"), ev(6, "b"), ev(2, "a"), ev(7, "b")):
        hub.event_committed(event)
    assert out.seqs("a") == [1, 2]
    assert out.seqs("b") == [6, 7]


# --- fan-out and slow clients -------------------------------------------------------------


def test_one_encoding_per_event_shared_by_every_subscriber() -> None:
    """The same bytes object goes to every subscriber of an encoding."""
    hub = Hub()
    outs: list[FakeOutlet] = []
    for encoding in (Encoding.FRAME, Encoding.FRAME, Encoding.SSE, Encoding.SSE):
        sub, out = connect(hub, encoding=encoding)
        needs = hub.subscribe(sub, "s", None)
        if needs:
            load(hub, needs, seq=0)
        outs.append(out)
    hub.event_committed(ev(1))
    assert outs[0].writes[-1] is outs[1].writes[-1]
    assert outs[2].writes[-1] is outs[3].writes[-1]
    payload = ev(1).payload
    assert outs[0].writes[-1] == protocol.ws_frame(payload)
    assert outs[2].writes[-1] == b"id: 1\nevent: post.created\ndata: " + payload + b"\n\n"


def test_a_batch_is_one_write_per_subscriber_built_once() -> None:
    """Events that arrive together reach each frame subscriber in one write, the same
    bytes for all; message subscribers get one message per event."""
    hub = Hub()
    outs: list[FakeOutlet] = []
    for encoding in (Encoding.FRAME, Encoding.FRAME, Encoding.MESSAGE):
        sub, out = connect(hub, encoding=encoding)
        needs = hub.subscribe(sub, "s", None)
        if needs:
            load(hub, needs, seq=0)
        outs.append(out)
    hub.events_committed(evs(1, 3) + evs(1, 2, stream="other"))
    frames = b"".join(protocol.ws_frame(e.payload) for e in evs(1, 3))
    assert outs[0].writes[-1] == frames
    assert outs[0].writes[-1] is outs[1].writes[-1]
    assert outs[2].seqs() == [1, 2, 3]


def test_a_batch_with_gaps_and_repeats_is_delivered_once_in_order() -> None:
    """Inside one batch, out-of-order and repeated events still come out 1, 2, 3 once."""
    hub, _, out = live_hub(seq=0)
    assert hub.events_committed([ev(1), ev(3), ev(1), ev(2), ev(3)]) == []
    assert out.seqs() == [1, 2, 3]


def test_a_slow_subscriber_in_a_batch_is_closed_and_the_others_get_it_all() -> None:
    """A batch that takes a subscriber over its limit closes it; the others get it all."""
    hub = Hub(max_pending=1000)
    slow, slow_out = connect(hub)
    fast, fast_out = connect(hub)
    load(hub, hub.subscribe(slow, "s", None), seq=0)
    hub.subscribe(fast, "s", None)
    for first in range(1, 30, 3):
        hub.events_committed(evs(first, first + 2))
        fast_out.flush()
    assert slow_out.closed is closecodes.SLOW and hub.evicted == 1
    assert fast_out.seqs() == list(range(1, 31)) and fast_out.closed is None


def test_gap_repair_and_a_joining_subscriber_each_get_events_once() -> None:
    """Events applied by a database read reach the live subscribers once, and a resume
    served by the same read gets its replay once, not again from the batch."""
    hub, _, live_out = live_hub(seq=10, window=5)
    hub.event_committed(ev(13))  # 11 and 12 missing: a read is asked for
    sub, out = connect(hub)
    needs = hub.subscribe(sub, "s", 2)  # older than the window: also needs the database
    assert all(isinstance(n, LoadEvents) for n in needs)
    hub.events_loaded("s", 10, evs(11, 13))
    hub.events_loaded("s", 2, evs(3, 13))
    assert live_out.seqs() == [11, 12, 13]
    assert out.seqs() == list(range(3, 14))
    hub.event_committed(ev(14))
    assert out.seqs() == list(range(3, 15)) and live_out.seqs() == [11, 12, 13, 14]


def test_a_resume_served_by_a_gap_read_does_not_get_the_read_twice() -> None:
    """A read that repairs a gap and also serves a waiting resume: the live subscriber
    gets the repaired events once, and the resumer only what follows its since."""
    hub, _, live_out = live_hub(seq=10)
    hub.event_committed(ev(13))
    sub, out = connect(hub)
    assert hub.subscribe(sub, "s", 12) == []  # ahead of this process: waits on the read
    hub.events_loaded("s", 10, evs(11, 13))
    assert live_out.seqs() == [11, 12, 13]
    assert out.types() == ["subscribed", "event"] and out.seqs() == [13]
    hub.event_committed(ev(14))
    assert live_out.seqs() == [11, 12, 13, 14] and out.seqs() == [13, 14]


def test_ws_frame_header_lengths() -> None:
    """Frames carry the 7-bit, 16-bit or 64-bit length form as RFC 6455 requires."""
    assert protocol.ws_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert protocol.ws_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert protocol.ws_frame(b"x" * 70000)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")


def test_slow_subscriber_is_closed_and_others_keep_receiving() -> None:
    """A subscriber over its byte limit is closed with SLOW; the others are unaffected."""
    hub = Hub(max_pending=1000)
    slow, slow_out = connect(hub)
    fast, fast_out = connect(hub)
    load(hub, hub.subscribe(slow, "s", None), seq=0)
    hub.subscribe(fast, "s", None)
    for seq in range(1, 40):
        hub.event_committed(ev(seq))
        fast_out.flush()
    assert slow_out.closed is closecodes.SLOW
    assert slow.closed is closecodes.SLOW and slow.streams == {}
    assert hub.evicted == 1
    assert sum(len(w) for w in slow_out.writes) <= 1000 + len(slow_out.writes[-1])
    assert fast_out.seqs() == list(range(1, 40))
    assert fast_out.closed is None


def test_subscriber_that_keeps_up_is_never_closed() -> None:
    """Draining outlets stay open however many events pass through."""
    hub, _, out = live_hub(seq=0, max_pending=500)
    for seq in range(1, 1000):
        hub.event_committed(ev(seq))
        out.flush()
    assert out.closed is None and len(out.seqs()) == 999


def test_slow_close_on_replay_stops_the_replay() -> None:
    """A replay larger than the limit closes the subscriber instead of queueing it all."""
    hub, _, _ = live_hub(seq=200, max_pending=2000)
    sub, out = connect(hub)
    hub.subscribe(sub, "s", 0)
    assert out.closed is closecodes.SLOW
    assert len(out.seqs()) < 200


# --- subscriptions -----------------------------------------------------------------------


def test_unsubscribe_stops_events_and_drops_the_channel() -> None:
    """Unsubscribing acknowledges, stops events, and lets go of an unfollowed stream."""
    hub, sub, out = live_hub(seq=0)
    hub.event_committed(ev(1))
    assert hub.unsubscribe(sub, "s") == [Unfollow("s")]
    assert out.frames()[-1] == {"type": "unsubscribed", "stream": "s"}
    assert hub.channels == {}
    hub.event_committed(ev(2))
    assert out.seqs() == [1]
    hub.unsubscribe(sub, "s")
    assert out.frames()[-1]["code"] == "not_subscribed"


def test_disconnect_cleans_up_every_subscription() -> None:
    """A connection that ends leaves no trace in the hub once its pending read is
    abandoned."""
    hub = Hub()
    sub, _ = connect(hub)
    load(hub, hub.subscribe(sub, "a", None), seq=0, stream="a")
    (loading,) = [n for n in hub.subscribe(sub, "b", None) if isinstance(n, LoadStream)]
    needs = hub.disconnect(sub)
    assert needs == [Unfollow("a"), CancelLoad("b", loading.token)]
    assert hub.load_abandoned("b", loading.token) == [Unfollow("b")]
    assert hub.channels == {} and hub.subscribers == {}


def test_answer_for_a_dropped_channel_is_ignored() -> None:
    """A stream read for a channel that was dropped (its read abandoned) and made again
    does not count."""
    hub = Hub()
    a, _ = connect(hub)
    first = hub.subscribe(a, "s", None)
    (need,) = [n for n in hub.disconnect(a) if isinstance(n, CancelLoad)]
    assert hub.load_abandoned("s", need.token) == [Unfollow("s")]
    b, out = connect(hub)
    second = hub.subscribe(b, "s", None)
    assert load(hub, first, seq=3) == []
    assert out.writes == []
    load(hub, second, seq=3)
    assert out.types() == ["subscribed"]


def test_a_read_under_way_is_shared_by_whoever_subscribes_next() -> None:
    """Subscribing and unsubscribing in a loop while the stream's first read is under
    way costs that one read: the channel stays until it is answered."""
    hub = Hub()
    a, a_out = connect(hub)
    first = hub.subscribe(a, "s", None)
    for _ in range(100):
        assert all(isinstance(n, CancelLoad) for n in hub.unsubscribe(a, "s"))
        assert hub.subscribe(a, "s", None) == []  # no second LoadStream
    b, b_out = connect(hub)
    assert hub.subscribe(b, "s", None) == []
    load(hub, first, seq=3)
    assert a_out.types()[-1] == "subscribed" and b_out.types() == ["subscribed"]


def test_a_channel_left_empty_while_loading_goes_when_its_read_answers() -> None:
    """A read nobody waits for any more, and that could not be stopped, drops its channel
    when it answers."""
    hub = Hub()
    a, _ = connect(hub)
    first = hub.subscribe(a, "s", None)
    hub.unsubscribe(a, "s")
    assert load(hub, first, seq=3) == [Unfollow("s")]
    assert hub.channels == {}


def test_a_failed_first_read_tells_its_subscribers_to_retry() -> None:
    """When the stream cannot be read, its waiting subscribers get an 'unavailable'
    error (which does not count towards the refusal limit) and may subscribe again."""
    hub = Hub(max_refused=0)
    a, out = connect(hub)
    (need,) = hub.subscribe(a, "s", None)
    assert isinstance(need, LoadStream)
    assert hub.load_failed("s", need.token) == [Unfollow("s")]
    assert out.frames()[-1]["code"] == "unavailable" and a.closed is None
    assert a.streams == {} and hub.channels == {}
    assert [type(n) for n in hub.subscribe(a, "s", None)] == [LoadStream]


def test_a_failed_replay_read_fails_only_the_subscribers_it_was_to_serve() -> None:
    """A replay that cannot be read fails the subscribers waiting for it; live
    subscribers and those served from the window go on."""
    hub, live_sub, live_out = live_hub(seq=300)
    old, old_out = connect(hub)
    (need,) = hub.subscribe(old, "s", 2)
    assert isinstance(need, LoadEvents) and not need.repair
    assert hub.events_failed("s", need.after) == []
    assert old_out.frames()[-1]["code"] == "unavailable" and old.streams == {}
    hub.event_committed(ev(301))
    assert live_out.seqs()[-1] == 301 and live_sub.closed is None


def test_revoked_credentials_close_their_connections() -> None:
    """Revoking a credential closes the connections opened with it (4001), no others."""
    hub = Hub()
    token, token_out = FakeOutlet(), None
    editor = hub.connect(token, Encoding.MESSAGE, drafts=True, credential=("token", 1))
    other = hub.connect(FakeOutlet(), Encoding.MESSAGE, drafts=True, credential=("token", 2))
    reader, _ = connect(hub)
    load(hub, hub.subscribe(editor, "s", None), seq=1)
    hub.subscribe(other, "s", None)
    assert hub.credentials() == {("token", 1), ("token", 2)}
    hub.revoke({("token", 1)})
    assert token.closed is closecodes.UNAUTHORIZED and token_out is None
    assert editor.closed is closecodes.UNAUTHORIZED and editor.streams == {}
    assert other.closed is None and reader.closed is None
    assert hub.credentials() == {("token", 2)}


def test_drafts_are_refused_to_readers_and_open_to_editors() -> None:
    """An anonymous subscriber cannot follow a draft; an editor can."""
    hub = Hub()
    reader, reader_out = connect(hub)
    editor, editor_out = connect(hub, drafts=True)
    needs = hub.subscribe(reader, "s", None)
    hub.subscribe(editor, "s", None)
    load(hub, needs, seq=2, status="draft")
    assert reader_out.frames() == [{"type": "error", "code": "stream_not_found",
                                    "message": "no stream 's'", "stream": "s"}]
    assert editor_out.types() == ["subscribed"]
    hub.event_committed(ev(3, op="stream.updated", status="live"))
    hub.subscribe(reader, "s", None)
    assert reader_out.types()[-1] == "subscribed"


def test_unknown_stream_is_an_error_and_the_connection_stays() -> None:
    """Subscribing to a stream that does not exist answers an error frame."""
    hub = Hub()
    sub, out = connect(hub)
    (need,) = hub.subscribe(sub, "nope", None)
    assert isinstance(need, LoadStream)
    assert hub.stream_loaded("nope", need.token, None, []) == [Unfollow("nope")]
    assert out.frames()[0]["code"] == "stream_not_found"
    assert sub.closed is None and sub.streams == {}


def test_subscription_limit_and_repeated_refusals() -> None:
    """Past the subscription limit an error comes back; endless refusals close."""
    hub = Hub(max_subscriptions=2, max_refused=3)
    sub, out = connect(hub)
    for slug in ("a", "b"):
        load(hub, hub.subscribe(sub, slug, None), seq=0, stream=slug)
    hub.subscribe(sub, "c", None)
    assert out.frames()[-1]["code"] == "too_many_subscriptions"
    assert sub.closed is None
    hub.subscribe(sub, "a", None)
    assert out.frames()[-1]["code"] == "already_subscribed"
    hub.subscribe(sub, "c", None)
    hub.subscribe(sub, "c", None)
    assert out.closed is closecodes.TOO_MANY_SUBSCRIPTIONS


# --- heartbeats and shutdown ------------------------------------------------------------


def test_heartbeat_only_for_idle_connections() -> None:
    """A tick sends a heartbeat to connections that were sent nothing since the last one."""
    hub, _, busy = live_hub(seq=0)
    _, idle = connect(hub)
    hub.heartbeat()  # resets activity flags
    busy.writes.clear()
    idle.writes.clear()
    hub.event_committed(ev(1))
    hub.heartbeat()
    assert busy.types() == ["event"]
    assert idle.types() == ["heartbeat"]
    hub.heartbeat()
    assert busy.types() == ["event", "heartbeat"]


def test_sse_heartbeat_is_a_comment() -> None:
    """SSE connections get a comment line, which EventSource ignores."""
    hub = Hub()
    _, out = connect(hub, encoding=Encoding.SSE)
    hub.heartbeat()
    assert out.writes == [protocol.SSE_HEARTBEAT]


def test_close_all_closes_every_connection_with_the_code() -> None:
    """Shutdown closes every connection with going-away and forgets every stream."""
    hub, _, out = live_hub(seq=0)
    _, other = connect(hub)
    hub.close_all(closecodes.GOING_AWAY)
    assert out.closed is closecodes.GOING_AWAY and other.closed is closecodes.GOING_AWAY
    assert hub.channels == {} and hub.subscribers == {}


@pytest.mark.parametrize("code", closecodes.ALL)
def test_close_codes_are_valid_and_unique(code: CloseCode) -> None:
    """Close codes are in the ranges RFC 6455 allows to send, with one meaning each."""
    assert code.code in (1000, 1001, 1002, 1009, 1011, 1012) or 4000 <= code.code < 5000
    assert closecodes.BY_CODE[code.code] is code
    assert len(code.reason.encode()) <= 123


# --- replays carry each post's current state -----------------------------------------------


def pev(seq: int, op: str, post_id: int, body: str, *, revision: int = 1,
        pinned: bool = False) -> PreparedEvent:
    """A post event shaped as the store writes it."""
    deleted = op == "post.deleted"
    post = {"id": post_id, "stream": "s", "author": None,
            "body": None if deleted else body, "html": None if deleted else f"<p>{body}</p>",
            "embeds": [], "pinned": pinned, "revision": revision,
            "created_at": "2026-11-25T10:00:00.000Z", "edited_at": None,
            "deleted_at": "2026-11-25T11:00:00.000Z" if deleted else None, "deleted": deleted}
    data = {"type": "event", "stream": "s", "seq": seq, "op": op,
            "at": f"2026-11-25T10:00:{seq:02d}.000Z", "post": post}
    return PreparedEvent.from_payload(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def loaded(hub: Hub, sub: Subscriber, since: int | None, history: list[PreparedEvent]) -> None:
    """Subscribe the first subscriber and answer its stream load with ``history``."""
    (need,) = hub.subscribe(sub, "s", since)
    assert isinstance(need, LoadStream)
    hub.stream_loaded("s", need.token, StreamInfo("live", history[-1].seq), history)


def replay_since_0(hub: Hub, encoding: Encoding = Encoding.MESSAGE) -> FakeOutlet:
    """What a new subscriber with since=0 is sent from memory."""
    sub, out = connect(hub, encoding=encoding)
    assert hub.subscribe(sub, "s", 0) == []
    return out


def test_an_edit_restates_the_posts_earlier_events_in_the_window() -> None:
    """After a correction, a replay from the window carries the corrected post in every
    event of that post, each keeping its seq, op and time, byte for byte what
    protocol.restate makes; other posts' events keep their bytes."""
    hub = Hub()
    first, first_out = connect(hub)
    history = [pev(1, "post.created", 7, "Witness Jane Roe"), pev(2, "post.created", 8, "Other"),
               pev(3, "post.pinned", 7, "Witness Jane Roe", pinned=True)]
    originals = [e.payload for e in history]
    assert [e.post_id for e in history] == [7, 8, 7] and ev(4, status="live").post_id is None
    loaded(hub, first, None, history)
    edit = pev(4, "post.edited", 7, "A witness", revision=2, pinned=True)
    hub.event_committed(edit)
    assert first_out.frames()[-1]["op"] == "post.edited"
    out = replay_since_0(hub)
    assert b"Jane Roe" not in b"".join(out.writes)
    frames = [f for f in out.frames() if f["type"] == "event"]
    assert [(f["seq"], f["op"], f["at"]) for f in frames] == [
        (n, op, f"2026-11-25T10:00:0{n}.000Z")
        for n, op in enumerate(["post.created", "post.created", "post.pinned", "post.edited"], 1)]
    current = json.loads(edit.payload)["post"]
    assert [f["post"] for f in frames] == [current, json.loads(originals[1])["post"],
                                           current, current]
    assert out.writes[1] == protocol.restate(originals[0], current).encode()
    assert out.writes[2] == originals[1]


def test_a_deletion_restates_websocket_frames_and_sse_records_too() -> None:
    """Encodings built before a deletion are built anew: neither a WebSocket frame nor an
    SSE record of the post's earlier events holds its text afterwards."""
    hub = Hub()
    sub, _ = connect(hub, encoding=Encoding.FRAME)
    loaded(hub, sub, 0, [pev(1, "post.created", 7, "A defamatory claim")])
    sse, _ = connect(hub, encoding=Encoding.SSE)
    hub.subscribe(sse, "s", 0)  # both encodings of event 1 are built and cached now
    hub.event_committed(pev(2, "post.deleted", 7, ""))
    for encoding in (Encoding.FRAME, Encoding.SSE):
        out = replay_since_0(hub, encoding)
        assert b"defamatory" not in b"".join(out.writes)
        assert out.writes[1].count(b'"deleted":true') == 1


def test_a_post_deleted_in_the_same_batch_is_never_written_with_its_text() -> None:
    """A post and its deletion arriving together reach live subscribers without the text:
    the post.created that goes out already carries the tombstone."""
    hub, _, out = live_hub(seq=0)
    hub.events_committed([pev(1, "post.created", 7, "An unchecked rumour"),
                      pev(2, "post.deleted", 7, "")])
    assert [f["op"] for f in out.frames()[1:]] == ["post.created", "post.deleted"]
    assert b"rumour" not in b"".join(out.writes)


def test_a_replay_read_before_a_correction_is_served_corrected() -> None:
    """Events read from the database before a correction committed, answering a resume
    older than the window, are brought up to the correction applied meanwhile."""
    hub = Hub(window=2)
    live, _ = connect(hub)
    stale = [pev(1, "post.created", 7, "Witness Jane Roe")] + [
        pev(n, "post.created", n + 10, f"post {n}") for n in range(2, 6)]
    loaded(hub, live, None, stale[-2:])
    sub, out = connect(hub)
    (need,) = hub.subscribe(sub, "s", 0)
    assert isinstance(need, LoadEvents) and need.after == 0
    edit = pev(6, "post.edited", 7, "A witness", revision=2)
    hub.event_committed(edit)  # committed after the read below began
    hub.events_loaded("s", 0, stale)
    assert out.seqs() == [1, 2, 3, 4, 5, 6]
    assert b"Jane Roe" not in b"".join(out.writes)
    assert out.frames()[1]["post"] == json.loads(edit.payload)["post"]


def test_a_stream_load_raced_by_a_deletion_serves_no_text() -> None:
    """A deletion that arrives while the stream's first read is in flight restates the
    events that read brings before anyone is served them."""
    hub = Hub()
    sub, out = connect(hub)
    (need,) = hub.subscribe(sub, "s", 0)
    assert isinstance(need, LoadStream)
    hub.event_committed(pev(3, "post.deleted", 7, ""))
    history = [pev(1, "post.created", 7, "A defamatory claim"), pev(2, "post.created", 8, "x")]
    hub.stream_loaded("s", need.token, StreamInfo("live", 2), history)
    assert out.seqs() == [1, 2, 3]
    assert b"defamatory" not in b"".join(out.writes)


def test_a_read_that_saw_a_later_state_is_not_taken_back() -> None:
    """An event a read found already restated to a later state (deleted) is not turned
    back by an older change that arrives after it: no text comes back."""
    hub = Hub()
    sub, _ = connect(hub)
    # The read ran after seq 4 (the deletion) had committed, but the stream row said 2.
    tombstone = pev(4, "post.deleted", 7, "")
    created = PreparedEvent.from_payload(protocol.restate(
        pev(1, "post.created", 7, "first").payload, json.loads(tombstone.payload)["post"]))
    loaded(hub, sub, None, [created, pev(2, "post.created", 8, "x")])
    hub.event_committed(pev(3, "post.edited", 7, "second text", revision=2))
    assert replay_since_0(hub).frames()[1]["post"]["deleted"] is True
    hub.event_committed(tombstone)
    replay = b"".join(replay_since_0(hub).writes)
    assert b"first" not in replay and b"second text" not in replay


def test_a_late_card_restates_the_window_without_a_new_revision() -> None:
    """post.embedded (a card that arrived after publishing) restates the post's earlier
    events in the window although its revision is the same: a replay shows the card."""
    hub = Hub()
    sub, _ = connect(hub)
    created = pev(1, "post.created", 7, "https://x.com/a/status/1")
    loaded(hub, sub, None, [created])
    data = json.loads(pev(2, "post.embedded", 7, "https://x.com/a/status/1").payload)
    data["post"]["html"] = '<figure class="link-card" data-state="ready">The card</figure>'
    data["post"]["embeds"] = [{"type": "card", "state": "ready"}]
    hub.event_committed(PreparedEvent.from_payload(json.dumps(data)))
    frames = [f for f in replay_since_0(hub).frames() if f["type"] == "event"]
    assert [(f["seq"], f["op"]) for f in frames] == [(1, "post.created"), (2, "post.embedded")]
    assert [f["post"]["html"] for f in frames] == [data["post"]["html"]] * 2
    assert frames[0]["post"]["revision"] == 1 and frames[0]["post"]["edited_at"] is None


# --- editors: presence and reader counts ------------------------------------------------


def test_only_an_editor_becoming_live_is_announced() -> None:
    """An editor's connection that becomes live yields ``Joined`` (presence tells it who
    is there); a reader's yields nothing more than before."""
    hub = Hub()
    editor, _ = connect(hub, drafts=True)
    reader, _ = connect(hub)
    needs = hub.subscribe(editor, "s", None)
    hub.subscribe(reader, "s", None)
    assert load(hub, needs, seq=3) == [Joined("s", editor)]
    later, _ = connect(hub)
    assert hub.subscribe(later, "s", None) == []


def test_tell_encodes_once_per_encoding_and_skips_closed_connections() -> None:
    """A control message goes to the given connections in each one's encoding, the same
    bytes object to every connection of one encoding."""
    hub, _, _ = live_hub()
    (a, out_a), (b, out_b) = connect(hub, encoding=Encoding.FRAME), connect(
        hub, encoding=Encoding.FRAME)
    c, out_c = connect(hub)
    gone, out_gone = connect(hub)
    hub.close(gone, closecodes.NORMAL)
    message = protocol.readers("s", 2)
    hub.tell([a, b, c, gone], message, kind="readers")
    assert out_a.writes == [protocol.ws_frame(message)]
    assert out_a.writes[0] is out_b.writes[0]
    assert out_c.writes == [message]
    assert out_gone.writes == []


def test_follower_counts_leave_out_the_excluded() -> None:
    """Each followed stream counts its live and waiting connections, less the excluded."""
    hub, _, _ = live_hub()
    editor, _ = connect(hub, drafts=True)
    hub.subscribe(editor, "s", None)
    waiting, _ = connect(hub)
    hub.subscribe(waiting, "t", None)
    assert hub.follower_counts() == {"s": 2, "t": 1}
    assert hub.follower_counts(excluding=[editor]) == {"s": 1, "t": 1}
