"""Two Bulletin servers sharing one database and one Redis: delivery across them, and
what happens when Redis or the database goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bulletin.settings import Settings
from bulletin.store.db import Database
from tests.conftest import (
    TEST_SECRET,
    EditorLogin,
    PrivateRedis,
    free_tcp_port,
    make_editor,
    with_prefix,
)

from .conftest import Api, LiveServer
from .readers import Reader, SseReader, WsReader, exactly_once_in_order


async def subscribed(*readers: Reader) -> None:
    """Wait until every reader follows its stream."""
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in readers)), 10)


async def ready(server: LiveServer) -> dict[str, Any]:
    """The server's /readyz answer, with its status code."""
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        response = await client.get("/readyz")
    return {"code": response.status_code, **response.json()}


async def until(check: Callable[[], Any], seconds: float = 15) -> None:
    """Wait until ``await check()`` (or ``check()``) is true."""
    for _ in range(int(seconds / 0.05)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_posts_through_either_server_reach_readers_of_both_in_order(
    start_server: Callable[..., Any], redis_url: str, editor: EditorLogin,
    readers: Callable[..., Reader],
) -> None:
    """Posts made concurrently through two servers reach every WebSocket and SSE reader
    of both, each event exactly once and in seq order."""
    a = await start_server(broker_url=redis_url)
    b = await start_server(broker_url=redis_url)
    api_a, api_b = Api(a.base, editor), Api(b.base, editor)
    await api_a.stream("s")
    group = [readers(WsReader, [a.ws_url]), readers(WsReader, [b.ws_url]),
             readers(SseReader, [a.base]), readers(SseReader, [b.base])]
    await subscribed(*group)

    async def post(api: Api, who: str) -> None:
        for i in range(15):
            await api.post("s", f"{who} {i}")

    await asyncio.gather(post(api_a, "a"), post(api_a, "a2"), post(api_b, "b"),
                         post(api_b, "b2"))
    for reader in group:
        await reader.wait_for(60)
    await asyncio.sleep(0.2)
    for reader in group:
        exactly_once_in_order(reader, 60)
    await api_a.client.aclose()
    await api_b.client.aclose()


async def test_redis_outage_loses_nothing(
    start_server: Callable[..., Any], private_redis: PrivateRedis, editor: EditorLogin,
    readers: Callable[..., Reader],
) -> None:
    """While Redis is down, posting works and each server's readers get its own posts;
    /readyz says the broker is reconnecting. When Redis is back, the servers repair
    their gaps from the database: every reader ends with every event once, in order."""
    url = with_prefix(private_redis.url, "outage:")
    a = await start_server(broker_url=url)
    b = await start_server(broker_url=url)
    api_a, api_b = Api(a.base, editor), Api(b.base, editor)
    await api_a.stream("s")
    on_a, on_b = readers(WsReader, [a.ws_url]), readers(SseReader, [b.base])
    await subscribed(on_a, on_b)
    await api_a.post("s", "before")
    await on_b.wait_for(1)

    private_redis.stop()
    await until(lambda: a.app.state.services.broker.state.value == "reconnecting")
    assert (await ready(a))["checks"]["broker"] == "reconnecting"
    assert (await ready(a))["code"] == 200
    for i in range(3):
        await api_a.post("s", f"a during {i}")     # seqs 2..4
    await on_a.wait_for(4)                          # delivered by A itself
    for i in range(3):
        await api_b.post("s", f"b during {i}")     # seqs 5..7
    await on_b.wait_for(7)                          # B repairs 2..4 from the gap it saw
    assert on_a.last == 4                           # A cannot know of 5..7 yet

    private_redis.start()
    await on_a.wait_for(7)                          # the Resync brought them
    assert (await ready(a))["checks"]["broker"] == "ok"
    await api_b.post("s", "after")
    await on_a.wait_for(8)
    await on_b.wait_for(8)
    await asyncio.sleep(0.2)
    exactly_once_in_order(on_a, 8)
    exactly_once_in_order(on_b, 8)
    assert on_a.connections == on_b.connections == 1
    await api_a.client.aclose()
    await api_b.client.aclose()


class TcpProxy:
    """A TCP relay in front of PostgreSQL that the test can cut and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (again, on the same port once it has one)."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one, as a network failure would."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if server is not None:
            await server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_database_outage_gives_503s_keeps_readers_and_recovers(
    postgres_url: str, redis_url: str, readers: Callable[..., Reader], tmp_path: Path,
) -> None:
    """With PostgreSQL unreachable, writes get a clear 503 and change nothing, /readyz is
    503, live readers stay connected and new readers of a followed stream are served from
    memory; once it is back, everything works again by itself."""
    real = make_url(postgres_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)
    db = Database(postgres_url)
    editor = await make_editor(db, "ada")
    server = LiveServer(Settings(database_url=via_proxy, broker_url=redis_url,
                                 secret_key=TEST_SECRET, secret_key_file=str(tmp_path / "key"),
                                 write_rate=1000.0, write_burst=1000), free_tcp_port())
    await server.start()
    try:
        await _database_outage(server, editor, proxy, readers)
    finally:
        await server.stop()
        await db.dispose()
        await proxy.cut()


async def _database_outage(server: LiveServer, editor: EditorLogin, proxy: TcpProxy,
                           readers: Callable[..., Reader]) -> None:
    api = Api(server.base, editor)
    await api.stream("s")
    first = readers(WsReader, [server.ws_url])
    await subscribed(first)
    await api.post("s", "one")
    await first.wait_for(1)

    await proxy.cut()
    refused = await api.client.post("/api/streams/s/posts", json={"body": "lost?"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "database_unavailable"
    assert "retry-after" in refused.headers
    down = await ready(server)
    assert down["code"] == 503 and down["checks"]["database"] == "unreachable"
    late = readers(WsReader, [server.ws_url])     # served from the hub's memory
    await late.wait_for(1)
    assert first.connections == 1

    await proxy.start()
    await until(lambda: _ready_code(server, 200))
    await api.post("s", "two")
    await first.wait_for(2)
    await late.wait_for(2)
    exactly_once_in_order(first, 2)
    exactly_once_in_order(late, 2)
    events = (await api.client.get("/api/streams/s/events?since=0")).json()["events"]
    assert [(e["seq"], e["post"]["body"]) for e in events] == [(1, "one"), (2, "two")]
    await api.client.aclose()


async def _ready_code(server: LiveServer, code: int) -> bool:
    return bool((await ready(server))["code"] == code)
