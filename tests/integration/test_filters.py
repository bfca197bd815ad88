"""Filtered subscriptions end to end: a real server, real WebSocket and SSE readers of one
tag's posts or of the key events only, while editors post, tag, pin and unpin."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .conftest import Api, LiveServer, events, quiet, recv, ws_connect


async def _changes(api: Api) -> list[tuple[int, str]]:
    """Publish a story's worth of changes; returns (post id, label) of each post."""
    c = api.client
    a = (await c.post("/api/streams/vote/posts", json={"body": "jobs", "tags": ["economy"]}))
    b = (await c.post("/api/streams/vote/posts", json={"body": "rally"}))
    assert a.status_code == b.status_code == 201
    a_id, b_id = a.json()["id"], b.json()["id"]
    # b gets the tag and a pin: it starts matching both filters; then a loses its tag.
    assert (await c.patch(f"/api/posts/{b_id}", json={"tags": ["economy"]})).status_code == 200
    assert (await c.patch(f"/api/posts/{b_id}", json={"pinned": True})).status_code == 200
    assert (await c.patch(f"/api/posts/{a_id}", json={"tags": []})).status_code == 200
    assert (await c.patch(f"/api/posts/{b_id}", json={"pinned": False})).status_code == 200
    return [(a_id, "jobs"), (b_id, "rally")]


def _view(frames: list[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
    """Apply event frames as a page does: the seqs seen, and the posts shown at the end."""
    shown: dict[int, str] = {}
    for frame in frames:
        post = frame["post"]
        if frame.get("filtered") or post.get("deleted"):
            assert set(post) == {"id"} or not frame.get("filtered")
            shown.pop(post["id"], None)
        else:
            shown[post["id"]] = post["body"]
    return [f["seq"] for f in frames], shown


async def test_a_filtered_websocket_reader_sees_only_matching_posts_and_every_seq(
    server: LiveServer, api: Api,
) -> None:
    """A tag's reader and a key events reader get every seq 1..6; their posts appear and
    disappear as edits change whether they match; an unfiltered reader gets all in full."""
    await api.stream("vote")
    tag_ws = await ws_connect(server.ws_url)
    key_ws = await ws_connect(server.ws_url)
    all_ws = await ws_connect(server.ws_url)
    for ws, flt in ((tag_ws, {"tag": "economy"}), (key_ws, {"pinned": True}), (all_ws, None)):
        await ws.send(json.dumps({"type": "subscribe", "stream": "vote", "since": 0,
                                  **({"filter": flt} if flt else {})}))
        assert (await recv(ws))["type"] == "subscribed"
    (_a_id, _), (b_id, _) = await _changes(api)
    tag_seqs, tag_shown = _view(await events(tag_ws, 6))
    key_frames = await events(key_ws, 6)
    key_seqs, key_shown = _view(key_frames)
    all_frames = await events(all_ws, 6)
    assert tag_seqs == key_seqs == [f["seq"] for f in all_frames] == [1, 2, 3, 4, 5, 6]
    assert tag_shown == {b_id: "rally"}
    assert key_shown == {}
    # The key-events reader saw b in full once it was pinned (seq 4), and a stub after.
    assert [not f.get("filtered") for f in key_frames] == [False, False, False, True, False,
                                                            False]
    assert not any(f.get("filtered") for f in all_frames)
    for ws in (tag_ws, key_ws, all_ws):
        await quiet(ws, 0.2)
        await ws.close()


async def test_a_filtered_resume_replays_through_the_filter(server: LiveServer, api: Api,
                                                            ) -> None:
    """A reader that comes back with since=0 and a filter gets the history through it, each
    post as it is now; an unknown filter field is refused and the connection stays."""
    await api.stream("vote")
    (_a_id, _), (b_id, _) = await _changes(api)
    ws = await ws_connect(server.ws_url)
    await ws.send(json.dumps({"type": "subscribe", "stream": "vote", "filter": {"when": 1}}))
    refused = await recv(ws)
    assert refused["type"] == "error" and refused["code"] == "bad_filter"
    await ws.send(json.dumps({"type": "subscribe", "stream": "vote", "since": 0,
                              "filter": {"tag": "economy"}}))
    assert (await recv(ws))["type"] == "subscribed"
    seqs, shown = _view(await events(ws, 6))
    assert seqs == [1, 2, 3, 4, 5, 6] and shown == {b_id: "rally"}
    await ws.close()


async def test_a_filtered_sse_reader_gets_stubs_with_every_id(server: LiveServer,
                                                              api: Api) -> None:
    """GET …/events with Accept: text/event-stream and ?pinned=true carries the filter:
    each record keeps its id (the seq) for Last-Event-ID, and a replay shows each post as
    it is now: nothing is a key event any more, so every post event is a stub."""
    await api.stream("vote")
    await _changes(api)
    frames: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client, client.stream(
            "GET", "/api/streams/vote/events", params={"since": 0, "pinned": "true"},
            headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        ids = []
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("data: ") and '"type":"event"' in line:
                frames.append(json.loads(line[6:]))
                if len(frames) == 6:
                    break
    assert ids == [1, 2, 3, 4, 5, 6]
    assert all(f.get("filtered") is True and set(f["post"]) == {"id"} for f in frames)
