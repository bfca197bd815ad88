"""Live delivery end to end: uvicorn on a free port, websockets clients, real database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from bulletin.core import closecodes
from tests.conftest import EditorLogin

from .conftest import (
    Api,
    LiveServer,
    RawClient,
    events,
    quiet,
    recv,
    subscribe,
    ws_connect,
)


async def test_posts_reach_every_subscriber_of_their_stream(server: LiveServer,
                                                            api: Api) -> None:
    """Several clients on several streams each get exactly their streams' posts, in order."""
    await api.stream("match")
    await api.stream("vote")
    a = await ws_connect(server.ws_url)
    b = await ws_connect(server.ws_url)
    both = await ws_connect(server.ws_url)
    assert await subscribe(a, "match") == 0
    await subscribe(b, "vote")
    await subscribe(both, "match")
    await subscribe(both, "vote")
    for n in range(3):
        await api.post("match", f"goal {n}")
        await api.post("vote", f"count {n}")
    got_a = await events(a, 3)
    got_b = await events(b, 3)
    got_both = await events(both, 6)
    assert [e["seq"] for e in got_a] == [1, 2, 3]
    assert [e["post"]["body"] for e in got_a] == ["goal 0", "goal 1", "goal 2"]
    assert [e["post"]["body"] for e in got_b] == ["count 0", "count 1", "count 2"]
    assert [e["seq"] for e in got_both if e["stream"] == "match"] == [1, 2, 3]
    assert [e["seq"] for e in got_both if e["stream"] == "vote"] == [1, 2, 3]
    for ws in (a, b, both):
        await quiet(ws, 0.2)
        await ws.close()


async def test_edits_deletes_and_pins_arrive_as_events(server: LiveServer, api: Api) -> None:
    """Every kind of change reaches a subscriber with the post's current state."""
    await api.stream("night")
    post = await api.post("night", "first draft")
    ws = await ws_connect(server.ws_url)
    await subscribe(ws, "night")
    c = api.client
    assert (await c.patch(f"/api/posts/{post['id']}", json={"body": "corrected"})).is_success
    assert (await c.patch(f"/api/posts/{post['id']}", json={"pinned": True})).is_success
    assert (await c.patch(f"/api/posts/{post['id']}", json={"pinned": False})).is_success
    assert (await c.delete(f"/api/posts/{post['id']}")).is_success
    assert (await c.patch("/api/streams/night", json={"status": "ended"})).is_success
    got = await events(ws, 5)
    assert [e["op"] for e in got] == ["post.edited", "post.pinned", "post.unpinned",
                                      "post.deleted", "stream.ended"]
    assert got[0]["post"]["body"] == "corrected"
    assert got[1]["post"]["pinned"] is True
    assert got[3]["post"]["deleted"] is True
    assert got[4]["stream_info"]["status"] == "ended"
    await ws.close()


@pytest.mark.parametrize("window", [256, 2])
async def test_reconnecting_client_gets_exactly_the_missed_events(
    start_server: Callable[..., Any], editor: EditorLogin, window: int,
) -> None:
    """A client away during posts resumes with exactly those events, in order, from the
    in-memory window or (window of 2) from the database."""
    server = await start_server(window_events=window)
    api = Api(server.base, editor)
    await api.stream("s")
    keeper = await ws_connect(server.ws_url)  # keeps the stream followed meanwhile
    await subscribe(keeper, "s")
    ws = await ws_connect(server.ws_url)
    await subscribe(ws, "s")
    await api.post("s", "one")
    (last,) = await events(ws, 1)
    await ws.close()
    for n in range(6):
        await api.post("s", f"missed {n}")
    ws = await ws_connect(server.ws_url)
    head = await subscribe(ws, "s", since=last["seq"])
    got = await events(ws, head - last["seq"])
    assert [e["post"]["body"] for e in got] == [f"missed {n}" for n in range(6)]
    assert [e["seq"] for e in got] == list(range(last["seq"] + 1, head + 1))
    await api.post("s", "live again")
    (live,) = await events(ws, 1)
    assert live["seq"] == head + 1
    await quiet(ws, 0.2)
    await ws.close()
    await keeper.close()
    await api.client.aclose()


async def test_concurrent_posting_during_subscribe_loses_and_doubles_nothing(
    server: LiveServer, api: Api,
) -> None:
    """Clients subscribing from various points while posts pour in see each seq once."""
    await api.stream("busy")
    for n in range(5):
        await api.post("busy", f"before {n}")

    async def poster() -> None:
        for n in range(20):
            await api.post("busy", f"during {n}")

    async def reader(since: int | None) -> tuple[int, list[int]]:
        ws = await ws_connect(server.ws_url)
        head = await subscribe(ws, "busy", since)
        start = head if since is None else since
        seqs = [e["seq"] for e in await events(ws, 25 - start, wait=10)]
        await quiet(ws, 0.2)
        await ws.close()
        return start, seqs

    task = asyncio.create_task(poster())
    results = await asyncio.gather(*(reader(s) for s in (0, 2, 4, None, 1, 3)))
    await task
    for start, seqs in results:
        assert seqs == list(range(start + 1, 26))


async def test_restart_on_the_same_database_loses_nothing(
    start_server: Callable[..., Any], editor: EditorLogin,
) -> None:
    """A server stopped and started again: the client is told to go away, and on resume
    gets every event made meanwhile."""
    server = await start_server()
    api = Api(server.base, editor)
    await api.stream("s")
    ws = await ws_connect(server.ws_url)
    await subscribe(ws, "s")
    await api.post("s", "before")
    (last,) = await events(ws, 1)
    await server.stop()
    with pytest.raises(ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == closecodes.GOING_AWAY.code
    await api.client.aclose()

    again = await start_server(port=server.port)
    api = Api(again.base, editor)
    for n in range(3):
        await api.post("s", f"while away {n}")
    ws = await ws_connect(again.ws_url)
    head = await subscribe(ws, "s", since=last["seq"])
    got = await events(ws, head - last["seq"])
    assert [e["post"]["body"] for e in got] == ["while away 0", "while away 1", "while away 2"]
    await ws.close()
    await api.client.aclose()


async def test_client_that_stops_reading_is_closed_and_others_keep_receiving(
    start_server: Callable[..., Any], editor: EditorLogin,
) -> None:
    """A reader that stops reading is closed as slow; a normal reader gets everything;
    the slow one resumes from its last event."""
    server = await start_server(send_queue_bytes=64 * 1024, max_post_chars=20_000)
    api = Api(server.base, editor)
    await api.stream("s")
    stalled = await asyncio.to_thread(RawClient, server.port, rcvbuf=4096)
    stalled.send_text('{"type":"subscribe","stream":"s"}')
    fine = await ws_connect(server.ws_url, max_size=None)
    await subscribe(fine, "s")
    await asyncio.sleep(0.1)
    body = "lorem ipsum dolor " * 1000
    posts = 0
    while server.hub.evicted == 0:
        await api.post("s", f"{posts} {body}")
        posts += 1
        assert posts < 400, "the stalled reader was never closed"
    for n in range(3):
        await api.post("s", f"after {n}")
    got = await events(fine, posts + 3, wait=10)
    assert [e["seq"] for e in got] == list(range(1, posts + 4))

    frames = await asyncio.to_thread(stalled.frames, 15)
    stalled.close()
    assert frames[-1][0] == 0x8, "no close frame"
    assert int.from_bytes(frames[-1][1][:2], "big") == closecodes.SLOW.code
    seen = [json.loads(p)["seq"] for op, p in frames
            if op == 0x1 and json.loads(p)["type"] == "event"]
    # Everything written before the close, and nothing after it.
    assert seen == list(range(1, 1 + len(seen))) and len(seen) <= posts

    last = seen[-1] if seen else 0
    resumed = await ws_connect(server.ws_url, max_size=None)
    head = await subscribe(resumed, "s", since=last)
    rest = await events(resumed, head - last, wait=10)
    assert [e["seq"] for e in rest] == list(range(last + 1, posts + 4))
    for ws in (fine, resumed):
        await ws.close()
    await api.client.aclose()


async def test_since_further_back_than_the_replay_limit_is_reset(
    start_server: Callable[..., Any], editor: EditorLogin,
) -> None:
    """Resuming too far back answers reset with the current seq; the client then reloads."""
    server = await start_server(replay_limit=3)
    api = Api(server.base, editor)
    await api.stream("s")
    for n in range(5):
        await api.post("s", f"p{n}")
    ws = await ws_connect(server.ws_url)
    await ws.send(json.dumps({"type": "subscribe", "stream": "s", "since": 1}))
    assert await recv(ws) == {"type": "reset", "stream": "s", "seq": 5}
    assert await subscribe(ws, "s", since=2) == 5
    assert [e["seq"] for e in await events(ws, 3)] == [3, 4, 5]
    await ws.close()
    await api.client.aclose()


# --- Server-Sent Events -------------------------------------------------------------------


async def _sse_records(lines: AsyncIterator[str], count: int) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    record: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if record:
                records.append(record)
                record = {}
            if len(records) >= count:
                return records
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        record[name] = value
    return records


async def test_sse_resumes_from_last_event_id_and_streams_live_posts(
    server: LiveServer, api: Api,
) -> None:
    """SSE replays after Last-Event-ID (id = seq, event = op), then carries new posts."""
    await api.stream("s")
    for n in range(3):
        await api.post("s", f"p{n}")
    async with httpx.AsyncClient(base_url=server.base, timeout=5) as client:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": "2"}
        async with client.stream("GET", "/api/streams/s/events", headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            first = await _sse_records(lines, 3)
            await api.post("s", "live")
            (live,) = await _sse_records(lines, 1)
    assert first[0] == {"retry": "2000"}
    assert first[1]["event"] == "subscribed" and "id" not in first[1]
    assert first[2]["id"] == "3" and first[2]["event"] == "post.created"
    assert json.loads(first[2]["data"])["post"]["body"] == "p2"
    assert live["id"] == "4" and json.loads(live["data"])["post"]["body"] == "live"


async def test_sse_since_query_and_errors(server: LiveServer, api: Api) -> None:
    """?since= resumes too; a bad Last-Event-ID is a 400 and an unknown stream a 404."""
    await api.stream("s")
    await api.post("s", "p0")
    await api.post("s", "p1")
    async with httpx.AsyncClient(base_url=server.base, timeout=5) as client:
        sse = {"Accept": "text/event-stream"}
        async with client.stream("GET", "/api/streams/s/events?since=1", headers=sse) as r:
            records = [rec for rec in await _sse_records(r.aiter_lines(), 3) if "id" in rec]
        assert [rec["id"] for rec in records] == ["2"]
        bad = await client.get("/api/streams/s/events",
                               headers={**sse, "Last-Event-ID": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"
        missing = await client.get("/api/streams/nope/events", headers=sse)
        assert missing.status_code == 404
        plain = await client.get("/api/streams/s/events?since=1")
        assert plain.headers["content-type"] == "application/json"


# --- bad input ----------------------------------------------------------------------------


async def test_every_bad_frame_gets_its_answer_and_the_connection_stays(
    start_server: Callable[..., Any], editor: EditorLogin,
) -> None:
    """Malformed JSON, unknown types, unknown streams, a binary frame and too many
    subscriptions each get an error frame; the connection still works afterwards."""
    server = await start_server(max_subscriptions=2)
    api = Api(server.base, editor)
    for slug in ("a", "b", "c"):
        await api.stream(slug)
    ws = await ws_connect(server.ws_url)
    cases = [
        ("{not json", "bad_json"),
        ('{"type":"dance","stream":"a"}', "unknown_type"),
        ('{"type":"subscribe","stream":"Not A Slug"}', "bad_stream"),
        ('{"type":"subscribe","stream":"a","since":-4}', "bad_since"),
        ('{"type":"subscribe","stream":"nope"}', "stream_not_found"),
        ('{"type":"unsubscribe","stream":"a"}', "not_subscribed"),
    ]
    for text, code in cases:
        await ws.send(text)
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["code"] == code, (text, frame)
    await ws.send(b"\x00binary")
    assert (await recv(ws))["code"] == "bad_frame"
    await subscribe(ws, "a")
    await subscribe(ws, "b")
    await ws.send(json.dumps({"type": "subscribe", "stream": "c"}))
    assert (await recv(ws))["code"] == "too_many_subscriptions"
    await ws.send(json.dumps({"type": "unsubscribe", "stream": "b"}))
    assert await recv(ws) == {"type": "unsubscribed", "stream": "b"}
    await subscribe(ws, "c")
    await api.post("c", "still here")
    (event,) = await events(ws, 1)
    assert event["stream"] == "c"
    await ws.close()
    await api.client.aclose()


async def test_oversized_frame_closes_with_1009(server: LiveServer) -> None:
    """A client frame over the size limit closes the connection with 1009."""
    ws = await ws_connect(server.ws_url)
    await ws.send(json.dumps({"type": "subscribe", "stream": "a" * 10_000}))
    with pytest.raises(ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_foreign_origin_is_closed_and_own_or_listed_origin_is_served(
    start_server: Callable[..., Any],
) -> None:
    """A page from another origin is closed with forbidden-origin; the server's own origin,
    a listed origin and apps without Origin are served."""
    server = await start_server(allowed_origins=("https://news.example",))
    evil = await ws_connect(server.ws_url, origin="https://evil.example")
    with pytest.raises(ConnectionClosed) as closed:
        await recv(evil)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == closecodes.FORBIDDEN_ORIGIN.code
    for origin in (f"http://127.0.0.1:{server.port}", "https://news.example", None):
        ws = await ws_connect(server.ws_url, origin=origin)
        await ws.send("{}")
        assert (await recv(ws))["type"] == "error"
        await ws.close()


async def test_drafts_need_an_editor_token(server: LiveServer, api: Api,
                                           editor: EditorLogin) -> None:
    """Readers cannot follow a draft; an editor's token on the upgrade can; a bad token
    is closed as unauthorized."""
    await api.stream("secret", status="draft")
    reader = await ws_connect(server.ws_url)
    await reader.send(json.dumps({"type": "subscribe", "stream": "secret"}))
    assert (await recv(reader))["code"] == "stream_not_found"
    desk = await ws_connect(server.ws_url, additional_headers=editor.headers)
    await subscribe(desk, "secret")
    await api.post("secret", "embargoed")
    (event,) = await events(desk, 1)
    assert event["post"]["body"] == "embargoed"
    bad = await ws_connect(server.ws_url, additional_headers={"Authorization": "Bearer nope"})
    assert (await recv(bad))["code"] == "invalid_token"
    with pytest.raises(ConnectionClosed) as closed:
        await recv(bad)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == closecodes.UNAUTHORIZED.code
    for ws in (reader, desk):
        await ws.close()


# --- liveness -----------------------------------------------------------------------------


async def test_idle_connection_gets_heartbeats(start_server: Callable[..., Any]) -> None:
    """A quiet connection receives heartbeat frames so that a browser can tell it is alive."""
    server = await start_server(heartbeat_seconds=0.2)
    ws = await ws_connect(server.ws_url)
    assert await recv(ws, 2) == {"type": "heartbeat"}
    assert await recv(ws, 2) == {"type": "heartbeat"}
    await ws.close()


async def test_peer_that_never_answers_pings_is_dropped(
    start_server: Callable[..., Any],
) -> None:
    """A dead peer (no pong) is closed after the ping timeout."""
    server = await start_server(ping_seconds=0.3, heartbeat_seconds=60)
    peer = await asyncio.to_thread(RawClient, server.port)
    frames = await asyncio.to_thread(peer.frames, 5)
    peer.close()
    assert frames[0][0] == 0x9, "expected a ping first"
    assert frames[-1][0] == 0x8
    assert int.from_bytes(frames[-1][1][:2], "big") == 1011


async def test_other_asgi_websocket_servers_use_the_queue_path(
    start_server: Callable[..., Any], editor: EditorLogin,
) -> None:
    """Without the raw-frame extension (uvicorn's stock protocol), every frame goes
    through ASGI send from a byte-counted queue: same protocol, same answers."""
    server = await start_server(uvicorn_options={"ws": "websockets-sansio"},
                                send_queue_bytes=64 * 1024)
    api = Api(server.base, editor)
    await api.stream("s")
    await api.post("s", "stored")
    ws = await ws_connect(server.ws_url)
    await ws.send("nonsense")
    assert (await recv(ws))["code"] == "bad_json"
    assert await subscribe(ws, "s", since=0) == 1
    await api.post("s", "live")
    got = await events(ws, 2)
    assert [e["post"]["body"] for e in got] == ["stored", "live"]
    (sub,) = server.hub.subscribers
    assert sub.encoding.value == "message"
    await server.stop()
    with pytest.raises(ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == closecodes.GOING_AWAY.code
    await api.client.aclose()
