"""Presence and reader counts on a real server: real WebSocket and SSE clients, and two
servers sharing Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import redis.asyncio
from websockets.asyncio.client import ClientConnection

from bulletin.live.brokers.redis import split_url
from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor

from .conftest import Api, LiveServer, quiet, recv, subscribe, ws_connect
from .readers import Reader, SseReader, WsReader
from .test_scaleout import subscribed, until

FAST = {"presence_seconds": 0.3, "reader_count_seconds": 0.2}


async def editor_socket(server: LiveServer, login: EditorLogin, slug: str = "s"
                        ) -> ClientConnection:
    """An editor's connection (bearer token on the upgrade) following ``slug``."""
    ws = await ws_connect(server.ws_url, additional_headers=login.headers)
    await subscribe(ws, slug)
    return ws


async def next_frame(ws: ClientConnection, kind: str,
                     check: Callable[[dict[str, Any]], bool] = lambda f: True,
                     wait: float = 5) -> dict[str, Any]:
    """The next frame of type ``kind`` that passes ``check``, skipping others."""
    async def find() -> dict[str, Any]:
        while True:
            frame = await recv(ws, wait)
            if frame["type"] == kind and check(frame):
                return frame
    return await asyncio.wait_for(find(), wait)


def doing(frame: dict[str, Any]) -> set[tuple[str, int | None, str]]:
    """Who does what, from a presence frame."""
    return {(e["name"], e["post"], e["state"]) for e in frame["editors"]}


async def presence(ws: ClientConnection, post: int | None, state: str,
                   slug: str = "s") -> None:
    await ws.send(json.dumps({"type": "presence", "stream": slug, "post": post,
                              "state": state}))


async def second_editor(database_url: str, name: str = "bob") -> EditorLogin:
    db = Database(database_url)
    try:
        return await make_editor(db, name)
    finally:
        await db.dispose()


async def test_two_editors_see_each_other_until_one_closes(
    server: LiveServer, api: Api, editor: EditorLogin, database_url: str,
) -> None:
    """Each editor following the stream is sent the list when it changes, with who, which
    post and since when; closing a connection takes its editor off the list."""
    await api.stream("s")
    bob = await second_editor(database_url)
    alice_ws = await editor_socket(server, editor)
    assert (await next_frame(alice_ws, "presence"))["editors"] == []
    bob_ws = await editor_socket(server, bob)
    await presence(alice_ws, None, "viewing")
    seen = await next_frame(bob_ws, "presence", lambda f: bool(f["editors"]))
    assert doing(seen) == {("Alice", None, "viewing")}
    assert seen["editors"][0]["editor"] == editor.editor_id
    assert seen["editors"][0]["since"].endswith("Z")
    await presence(bob_ws, 41, "editing")
    both = {("Alice", None, "viewing"), ("Bob", 41, "editing")}
    assert doing(await next_frame(alice_ws, "presence", lambda f: len(f["editors"]) == 2)) == both
    await alice_ws.close()
    left = await next_frame(bob_ws, "presence", lambda f: len(f["editors"]) == 1)
    assert doing(left) == {("Bob", 41, "editing")}
    await presence(bob_ws, None, "viewing")
    moved = await next_frame(bob_ws, "presence", lambda f: doing(f) != doing(left))
    assert doing(moved) == {("Bob", None, "viewing")}
    await bob_ws.close()


async def test_unsubscribing_ends_presence_on_that_stream(
    server: LiveServer, api: Api, editor: EditorLogin, database_url: str,
) -> None:
    """An editor who stops following the stream leaves its list."""
    await api.stream("s")
    bob = await second_editor(database_url)
    alice_ws, bob_ws = await editor_socket(server, editor), await editor_socket(server, bob)
    await presence(alice_ws, 3, "editing")
    await next_frame(bob_ws, "presence", lambda f: bool(f["editors"]))
    await alice_ws.send(json.dumps({"type": "unsubscribe", "stream": "s"}))
    await next_frame(bob_ws, "presence", lambda f: f["editors"] == [])
    await presence(alice_ws, 3, "editing")
    refused = await next_frame(alice_ws, "error")
    assert refused["code"] == "not_subscribed"
    for ws in (alice_ws, bob_ws):
        await ws.close()


async def test_a_reader_never_gets_presence_and_is_refused_when_it_sends_it(
    server: LiveServer, api: Api, editor: EditorLogin,
) -> None:
    """A reader's connection is sent no presence or readers frame, even while editors
    change theirs; its own presence frame is answered with an error and the connection
    goes on receiving events."""
    await api.stream("s")
    reader = await ws_connect(server.ws_url)
    await subscribe(reader, "s")
    alice_ws = await editor_socket(server, editor)
    await presence(alice_ws, None, "viewing")
    await next_frame(alice_ws, "presence", lambda f: bool(f["editors"]))
    await presence(alice_ws, 1, "editing")
    await next_frame(alice_ws, "presence", lambda f: doing(f) == {("Alice", 1, "editing")})
    await quiet(reader, 0.5)
    await presence(reader, 1, "editing")
    refused = await recv(reader)
    assert (refused["type"], refused["code"], refused["stream"]) == ("error", "editors_only", "s")
    await api.post("s", "still served")
    event = await next_frame(reader, "event")
    assert event["post"]["body"] == "still served"
    await quiet(reader, 0.3)
    for ws in (reader, alice_ws):
        await ws.close()


async def test_editors_get_reader_counts_live_and_in_the_api(
    start_server: Callable[..., Any], editor: EditorLogin, readers: Callable[..., Reader],
) -> None:
    """WebSocket and SSE readers are counted, editors' own connections are not;
    GET /api/streams/{slug} gives editors ``readers`` and anonymous callers no such field;
    editor connections are sent the count as it changes."""
    server = await start_server(**FAST)
    api = Api(server.base, editor)
    await api.stream("s")
    alice_ws = await editor_socket(server, editor)
    assert (await next_frame(alice_ws, "readers"))["count"] == 0
    group = [readers(WsReader, [server.ws_url]), readers(WsReader, [server.ws_url]),
             readers(SseReader, [server.base])]
    await subscribed(*group)
    assert (await next_frame(alice_ws, "readers", lambda f: f["count"] == 3))["stream"] == "s"
    answer = await api.client.get("/api/streams/s")
    assert answer.json()["readers"] == 3
    listed = await api.client.get("/api/streams")
    assert [s["readers"] for s in listed.json()["streams"]] == [3]
    async with httpx.AsyncClient(base_url=server.base) as anonymous:
        assert "readers" not in (await anonymous.get("/api/streams/s")).json()
        assert "readers" not in (await anonymous.get("/api/streams")).json()["streams"][0]
    await group[0].stop()
    await next_frame(alice_ws, "readers", lambda f: f["count"] == 2)
    await alice_ws.close()
    await api.client.aclose()


async def test_presence_and_reader_counts_cross_processes_through_redis(
    start_server: Callable[..., Any], redis_url: str, editor: EditorLogin, database_url: str,
    readers: Callable[..., Reader],
) -> None:
    """Editors on two servers sharing Redis see each other; each server's API sums the
    readers of both; an editor whose server closes their connection leaves both lists."""
    a = await start_server(broker_url=redis_url, **FAST)
    b = await start_server(broker_url=redis_url, **FAST)
    api_a, api_b = Api(a.base, editor), Api(b.base, editor)
    await api_a.stream("s")
    bob = await second_editor(database_url)
    alice_ws, bob_ws = await editor_socket(a, editor), await editor_socket(b, bob)
    await presence(alice_ws, 5, "editing")
    await presence(bob_ws, None, "viewing")
    both = {("Alice", 5, "editing"), ("Bob", None, "viewing")}
    for ws in (alice_ws, bob_ws):
        await next_frame(ws, "presence", lambda f: doing(f) == both)
    group = [readers(WsReader, [a.ws_url]), readers(SseReader, [a.base]),
             readers(WsReader, [b.ws_url])]
    await subscribed(*group)

    async def summed() -> bool:
        counts = [(await api.client.get("/api/streams/s")).json()["readers"]
                  for api in (api_a, api_b)]
        return counts == [3, 3]

    await until(summed, 10)
    await next_frame(bob_ws, "readers", lambda f: f["count"] == 3)
    await alice_ws.close()
    await next_frame(bob_ws, "presence", lambda f: doing(f) == {("Bob", None, "viewing")})
    await bob_ws.close()
    for api in (api_a, api_b):
        await api.client.aclose()


async def test_a_process_that_stops_sending_leaves_no_ghost(
    start_server: Callable[..., Any], redis_url: str, editor: EditorLogin,
) -> None:
    """A list from a process that then says nothing more (it died) is shown, and dropped
    after three presence intervals; so are its reader counts."""
    server = await start_server(broker_url=redis_url, **FAST)
    api = Api(server.base, editor)
    await api.stream("s")
    alice_ws = await editor_socket(server, editor)
    url, prefix = split_url(redis_url)
    client = redis.asyncio.Redis.from_url(url)
    ghost = {"editor": 99, "name": "Ghost", "post": None, "state": "viewing",
             "since": "2026-01-01T00:00:00.000Z"}
    await client.publish(prefix + "presence", json.dumps(
        {"process": "dead", "stream": "s", "entries": [ghost]}))
    await client.publish(prefix + "readers", json.dumps({"process": "dead", "counts": {"s": 40}}))
    await next_frame(alice_ws, "presence", lambda f: doing(f) == {("Ghost", None, "viewing")})
    assert (await api.client.get("/api/streams/s")).json()["readers"] == 40
    loop = asyncio.get_running_loop()
    shown_at = loop.time()
    await next_frame(alice_ws, "presence", lambda f: f["editors"] == [], wait=5)
    assert loop.time() - shown_at >= 3 * FAST["presence_seconds"] - 0.35
    assert (await api.client.get("/api/streams/s")).json()["readers"] == 0
    await client.aclose()
    await alice_ws.close()
    await api.client.aclose()
