"""Corrected and deleted text leaves every replay: the events API, WebSocket and SSE
resumes served from a process's memory or from the database, on one process or two, and
a story that was corrected while still a draft. Every check is on the bytes a reader
receives; the old texts stay readable to editors only, in the revisions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bulletin.settings import Settings
from tests.conftest import TEST_SECRET, EditorLogin, free_tcp_port

from .conftest import Api, LiveServer, events, subscribe, ws_connect

# Named by mistake, then corrected.
WITNESS = "Jane Roe"
# Published, then deleted on legal advice (after being pinned).
CLAIM = "Richard Roe took the bribe"
CORRECTED = "A witness saw the crash"
HEAD = 6  # the seq after the story below


async def tell_the_story(api: Api, slug: str = "s") -> dict[str, int]:
    """Post, correct, pin and delete: seq 1-3 posts, 4 edit, 5 pin, 6 delete."""
    named = await api.post(slug, f"{WITNESS} saw the crash")
    claim = await api.post(slug, f"Sources say **{CLAIM}**")
    await api.post(slug, "Police have closed the road")
    c = api.client
    fixed = await c.patch(f"/api/posts/{named['id']}", json={"body": CORRECTED, "pinned": True})
    assert fixed.status_code == 200, fixed.text
    deleted = await c.delete(f"/api/posts/{claim['id']}")
    assert deleted.status_code == 200 and deleted.json()["seq"] == HEAD, deleted.text
    return {"named": named["id"], "claim": claim["id"]}


def assert_clean(received: str | bytes) -> None:
    """Neither old text is anywhere in what a reader received; the correction is."""
    text = received.decode() if isinstance(received, bytes) else received
    assert WITNESS not in text and "Richard Roe" not in text and "bribe" not in text
    assert CORRECTED in text


async def replay_over_websocket(server: LiveServer, slug: str = "s") -> str:
    """Every frame a new anonymous WebSocket reader gets for since=0, up to HEAD."""
    ws = await ws_connect(server.ws_url)
    try:
        await ws.send(json.dumps({"type": "subscribe", "stream": slug, "since": 0}))
        frames: list[str] = []
        seqs: list[int] = []
        while not seqs or seqs[-1] < HEAD:
            raw = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(raw, str)
            frames.append(raw)
            frame = json.loads(raw)
            assert frame["type"] in ("subscribed", "event", "heartbeat"), frame
            if frame["type"] == "event":
                seqs.append(frame["seq"])
        assert seqs == list(range(1, HEAD + 1))
        return "".join(frames)
    finally:
        await ws.close()


async def replay_over_sse(base: str, slug: str = "s") -> bytes:
    """The raw bytes of an anonymous SSE response for ?since=0, up to HEAD's record."""
    received = b""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client, client.stream(
            "GET", f"/api/streams/{slug}/events?since=0",
            headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            received += chunk
            if f"id: {HEAD}\n".encode() in received and received.endswith(b"\n\n"):
                break
    return received


async def follow_from_the_start(server: LiveServer, slug: str = "s",
                                headers: dict[str, str] | None = None) -> Any:
    """A WebSocket reader following the stream, so the process keeps it in memory."""
    ws = await ws_connect(server.ws_url, additional_headers=headers or {})
    await subscribe(ws, slug, since=0)
    return ws


async def test_events_api_since_0_serves_only_current_text(
    server: LiveServer, api: Api
) -> None:
    """GET …/events?since=0 gives every event of the story, each post's as it is now: the
    corrected text in the named post's events, the tombstone in the deleted one's."""
    await api.stream("s")
    ids = await tell_the_story(api)
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as reader:
        response = await reader.get("/api/streams/s/events?since=0")
    assert response.status_code == 200
    assert_clean(response.content)
    log = response.json()["events"]
    assert [e["op"] for e in log] == ["post.created", "post.created", "post.created",
                                      "post.edited", "post.pinned", "post.deleted"]
    assert [e["seq"] for e in log] == list(range(1, HEAD + 1))
    named = [e["post"] for e in log if e["post"]["id"] == ids["named"]]
    assert all(p == named[-1] and p["body"] == CORRECTED and p["pinned"] for p in named)
    claim = [e["post"] for e in log if e["post"]["id"] == ids["claim"]]
    assert len(claim) == 2 and all(p["deleted"] and p["body"] is None and p["html"] is None
                                   and p["embeds"] == [] for p in claim)


async def test_revisions_keep_the_old_text_for_editors_only(
    server: LiveServer, api: Api
) -> None:
    """The corrected text stays in the post's revisions, which editors can read and an
    anonymous reader cannot."""
    await api.stream("s")
    ids = await tell_the_story(api)
    history = await api.client.get(f"/api/posts/{ids['named']}/revisions")
    assert [r["body"] for r in history.json()["revisions"]] == [f"{WITNESS} saw the crash"]
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as reader:
        refused = await reader.get(f"/api/posts/{ids['named']}/revisions")
    assert refused.status_code == 401 and WITNESS not in refused.text


async def test_websocket_since_0_from_memory_serves_only_current_text(
    server: LiveServer, api: Api
) -> None:
    """A reader who follows the stream saw each change live; a new reader resuming from
    0, served from the process's window of events, gets no old text."""
    await api.stream("s")
    early = await follow_from_the_start(server)
    await tell_the_story(api)
    seen = await events(early, HEAD)
    assert seen[0]["post"]["body"] == f"{WITNESS} saw the crash"  # it was live then
    assert len(server.hub.channels["s"].window) == HEAD
    assert_clean(await replay_over_websocket(server))
    await early.close()


async def test_websocket_since_0_from_the_database_serves_only_current_text(
    start_server: Callable[..., Any], editor: EditorLogin
) -> None:
    """A resume older than the process's window is served from the database: no old
    text either."""
    server = await start_server(window_events=2, replay_limit=50)
    api = Api(server.base, editor)
    await api.stream("s")
    early = await follow_from_the_start(server)
    await tell_the_story(api)
    await events(early, HEAD)
    window = server.hub.channels["s"].window
    assert [e.seq for e in window] == [HEAD - 1, HEAD]  # seq 1-4 must come from the database
    assert_clean(await replay_over_websocket(server))
    await early.close()
    await api.client.aclose()


async def test_sse_since_0_serves_only_current_text(server: LiveServer, api: Api) -> None:
    """An SSE reader starting from ?since=0 gets every record without the old texts,
    whether the process held the story's events in memory as first written or not."""
    await api.stream("s")
    early = await follow_from_the_start(server)
    await tell_the_story(api)
    await events(early, HEAD)
    assert_clean(await replay_over_sse(server.base))  # served from memory
    await early.close()
    for _ in range(100):
        if "s" not in server.hub.channels:
            break
        await asyncio.sleep(0.05)
    assert "s" not in server.hub.channels
    assert_clean(await replay_over_sse(server.base))  # read from the database


async def test_a_second_process_forgets_the_old_text_too(
    postgres_url: str, redis_url: str, pg_editor: EditorLogin, tmp_path: Path
) -> None:
    """Two servers sharing PostgreSQL and Redis: a reader on B followed the story as it
    was written through A; after the correction and deletion, a new reader resuming from
    0 on B, served from B's own window, gets no old text, over WebSocket and SSE."""
    servers = [LiveServer(Settings(database_url=postgres_url, broker_url=redis_url,
                                   secret_key=TEST_SECRET,
                                   secret_key_file=str(tmp_path / "key"),
                                   write_rate=1000.0, write_burst=1000), free_tcp_port())
               for _ in range(2)]
    for server in servers:
        await server.start()
    a, b = servers
    api = Api(a.base, pg_editor)
    try:
        await api.stream("s")
        early = await follow_from_the_start(b)
        named = await api.post("s", f"{WITNESS} saw the crash")
        await events(early, 1)
        assert WITNESS.encode() in b.hub.channels["s"].window[0].payload
        claim = await api.post("s", f"Sources say **{CLAIM}**")
        await api.post("s", "Police have closed the road")
        c = api.client
        assert (await c.patch(f"/api/posts/{named['id']}",
                              json={"body": CORRECTED, "pinned": True})).is_success
        assert (await c.delete(f"/api/posts/{claim['id']}")).is_success
        await events(early, HEAD - 1)  # every change reached B through Redis
        assert len(b.hub.channels["s"].window) == HEAD
        assert_clean(await replay_over_websocket(b))
        assert_clean(await replay_over_sse(b.base))
        window = b",".join(e.payload for e in b.hub.channels["s"].window)
        assert_clean(window)
        async with httpx.AsyncClient(base_url=a.base, timeout=10) as reader:
            log = (await reader.get("/api/streams/s/events?since=0")).content
        assert b'"events":[' + window + b"]" in log  # B's memory and the log: same bytes
        await early.close()
    finally:
        await api.client.aclose()
        for server in servers:
            await server.stop()


async def test_text_changed_while_a_draft_never_becomes_public(
    server: LiveServer, api: Api, editor: EditorLogin
) -> None:
    """Corrections and deletions made while the story was a draft, with an editor
    following it (so the process holds its events in memory), leave nothing of the old
    text for readers once it goes live: not over WebSocket, SSE or the events API."""
    await api.stream("s", status="draft")
    desk = await follow_from_the_start(server, headers=editor.headers)
    await tell_the_story(api)
    assert (await events(desk, HEAD))[0]["post"]["body"] == f"{WITNESS} saw the crash"
    went_live = await api.client.patch("/api/streams/s", json={"status": "live"})
    assert went_live.status_code == 200
    await events(desk, 1)
    assert_clean(await replay_over_websocket(server))
    assert_clean(await replay_over_sse(server.base))
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as reader:
        assert_clean((await reader.get("/api/streams/s/events?since=0")).content)
    await desk.close()


async def test_a_resume_gets_a_deleted_posts_first_event_as_a_tombstone(
    server: LiveServer, api: Api
) -> None:
    """A resumer gets each seq once, and the post.created of a post deleted since carries
    the tombstone (deleted true, no text): clients apply it as a removal."""
    await api.stream("s")
    await tell_the_story(api)
    ws = await ws_connect(server.ws_url)
    assert await subscribe(ws, "s", since=1) == HEAD
    got = await events(ws, HEAD - 1)
    assert [e["seq"] for e in got] == list(range(2, HEAD + 1))
    assert got[0]["op"] == "post.created" and got[0]["post"]["deleted"] is True
    await ws.close()
