"""The desks hear that a stream's posts that wait changed: a ``queue`` frame to every
editor connection following the stream (contributors' too), never to readers, on this
server and on the others sharing Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor

from .conftest import Api, LiveServer, events, quiet, recv, subscribe, ws_connect
from .test_presence import editor_socket, next_frame


async def contributor(database_url: str, name: str = "carol") -> EditorLogin:
    db = Database(database_url)
    try:
        return await make_editor(db, name, role="contributor")
    finally:
        await db.dispose()


async def queue_frame(ws: ClientConnection, slug: str = "s") -> dict[str, Any]:
    """The next ``queue`` frame, skipping the others (events, presence, reader counts,
    heartbeats)."""
    frame = await next_frame(ws, "queue", lambda f: True)
    assert frame == {"type": "queue", "stream": slug}
    return frame


async def no_queue_frame(ws: ClientConnection, seconds: float = 0.5) -> None:
    """Nothing but presence, reader counts and heartbeats for ``seconds``."""
    try:
        while True:
            frame = await recv(ws, seconds)
            assert frame["type"] in ("heartbeat", "presence", "readers"), frame
    except TimeoutError:
        return


def later(hours: float = 3) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def test_every_change_to_the_posts_that_wait_reaches_the_desks_and_no_reader(
    server: LiveServer, api: Api, editor: EditorLogin, database_url: str,
) -> None:
    """Submitted, sent back, submitted again, approved; scheduled, rescheduled, cancelled:
    each is one ``queue`` frame to the editor and the contributor following the stream;
    a reader hears none of it, only the approved post's ``post.created``; a change to a
    published post, and a stream nobody waits on, are no such news."""
    await api.stream("s")
    await api.stream("other")
    carol = await contributor(database_url)
    reader = await ws_connect(server.ws_url)
    await subscribe(reader, "s")
    alice_ws = await editor_socket(server, editor)
    carol_ws = await editor_socket(server, carol)
    desks = (alice_ws, carol_ws)
    async with httpx.AsyncClient(base_url=server.base, headers=carol.headers,
                                 timeout=10) as carol_api:
        r = await carol_api.post("/api/streams/s/posts", json={"body": "From the gate"})
        assert r.status_code == 201 and r.json()["status"] == "submitted", r.text
        post_id = r.json()["id"]
        for ws in desks:
            await queue_frame(ws)
        r = await api.client.post(f"/api/posts/{post_id}/send-back",
                                  json={"note": "Which gate?"})
        assert r.status_code == 200, r.text
        for ws in desks:
            await queue_frame(ws)
        r = await carol_api.patch(f"/api/posts/{post_id}", json={"body": "From the north gate"})
        assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
        for ws in desks:
            await queue_frame(ws)
    r = await api.client.post(f"/api/posts/{post_id}/approve")
    assert r.status_code == 200, r.text
    [created] = await events(reader, 1)
    assert created["op"] == "post.created" and created["post"]["id"] == post_id
    for ws in desks:
        await queue_frame(ws)

    r = await api.client.post("/api/streams/s/posts",
                              json={"body": "**20:00 recap**", "publish_at": later()})
    assert r.status_code == 201 and r.json()["status"] == "scheduled", r.text
    scheduled = r.json()["id"]
    await queue_frame(alice_ws)
    r = await api.client.patch(f"/api/posts/{scheduled}", json={"publish_at": later(4)})
    assert r.status_code == 200, r.text
    await queue_frame(alice_ws)
    r = await api.client.delete(f"/api/posts/{scheduled}")
    assert r.status_code == 200, r.text
    await queue_frame(alice_ws)

    r = await api.client.patch(f"/api/posts/{post_id}", json={"body": "North gate, 10,000"})
    assert r.status_code == 200, r.text
    r = await api.client.post("/api/streams/other/posts",
                              json={"body": "elsewhere", "publish_at": later()})
    assert r.status_code == 201, r.text
    [edited] = await events(alice_ws, 1)
    assert edited["op"] == "post.edited"
    await no_queue_frame(alice_ws)
    await events(reader, 1)  # the post.edited
    await quiet(reader, 0.3)
    for ws in (reader, *desks):
        await ws.close()


async def test_the_desks_of_another_server_hear_it_through_redis(
    start_server: Callable[..., Any], redis_url: str, editor: EditorLogin, database_url: str,
) -> None:
    """A contributor submits on one server; the editor whose desk is on the other server
    sharing Redis is told, and so is an editor on the first."""
    a = await start_server(broker_url=redis_url)
    b = await start_server(broker_url=redis_url)
    api_a = Api(a.base, editor)
    await api_a.stream("s")
    carol = await contributor(database_url)
    here, there = await editor_socket(a, editor), await editor_socket(b, editor)
    async with httpx.AsyncClient(base_url=a.base, headers=carol.headers,
                                 timeout=10) as carol_api:
        r = await carol_api.post("/api/streams/s/posts", json={"body": "From the gate"})
        assert r.status_code == 201, r.text
    for ws in (here, there):
        await queue_frame(ws)
    for ws in (here, there):
        await ws.close()
    await api_a.client.aclose()
