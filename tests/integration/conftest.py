"""A real uvicorn server on a free port, real WebSocket clients, a real database."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bulletin.serving import BulletinServer, config
from bulletin.settings import Settings
from bulletin.store.db import Database
from bulletin.web.app import create_app
from tests.conftest import EditorLogin, make_editor
from tests.test_cli import _stop, _wait_ready
from tests.test_cli import start_server as start_process

from .readers import Reader


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """Bulletin under uvicorn (with its WebSocket protocol) in this event loop."""

    def __init__(self, settings: Settings, port: int, **uvicorn_options: Any) -> None:
        self.settings = settings
        self.uvicorn_options = uvicorn_options
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.server: BulletinServer | None = None
        self.task: asyncio.Task[None] | None = None
        self.app: Any = None

    async def start(self) -> None:
        """Serve, and return once the port accepts connections."""
        self.app = create_app(self.settings)
        self.server = BulletinServer(
            config(self.app, self.settings, host="127.0.0.1", port=self.port,
                   log_config=None, log_level="warning", **self.uvicorn_options), self.app)
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.02)
        raise AssertionError("server did not start")

    async def stop(self) -> None:
        """Stop as on SIGTERM: going-away to every connection, then the lifespan ends."""
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 20)
            self.server = self.task = None

    @property
    def hub(self) -> Any:
        return self.app.state.services.live.hub


@pytest.fixture
async def start_server(
    settings: Settings,
) -> AsyncIterator[Callable[..., Any]]:
    """Start a server with settings overrides; every one started is stopped at the end."""
    servers: list[LiveServer] = []

    async def start(port: int | None = None, uvicorn_options: dict[str, Any] | None = None,
                    **overrides: Any) -> LiveServer:
        server = LiveServer(replace(settings, **overrides), port or free_port(),
                            **(uvicorn_options or {}))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(start_server: Callable[..., Any]) -> LiveServer:
    """A server with the default live settings."""
    result: LiveServer = await start_server()
    return result


@pytest.fixture
async def editor(database_url: str) -> EditorLogin:
    """An editor with a token, made directly in the database."""
    db = Database(database_url)
    try:
        return await make_editor(db, "alice")
    finally:
        await db.dispose()


@pytest.fixture
def process_env(postgres_url: str, redis_url: str) -> dict[str, str]:
    """An environment for `bulletin serve` processes sharing the test's PostgreSQL
    database and Redis prefix."""
    return {**os.environ, "BULLETIN_DATABASE_URL": postgres_url,
            "BULLETIN_BROKER_URL": redis_url, "BULLETIN_WRITE_RATE": "1000",
            "BULLETIN_WRITE_BURST": "1000", "BULLETIN_LOG_LEVEL": "warning",
            "BULLETIN_KEEPALIVE_SECONDS": "30",
            "BULLETIN_SECRET_KEY": "processes-test-secret-0123456789-abcdefghij"}


@pytest.fixture
def serve(process_env: dict[str, str]) -> Iterator[Callable[..., tuple[Any, str]]]:
    """Starts `bulletin serve` processes (with extra arguments) and waits until each is
    ready; returns the process and its base URL. All are stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        process, base = start_process(process_env, *args)
        started.append(process)
        _wait_ready(base, process)
        return process, base

    yield start
    for process in started:
        _stop(process)  # also reads and closes the output of one that was killed


@pytest.fixture
async def pg_editor(postgres_url: str) -> EditorLogin:
    """An editor with a token in the test's PostgreSQL database."""
    db = Database(postgres_url)
    try:
        return await make_editor(db, "alice")
    finally:
        await db.dispose()


@pytest.fixture
async def readers() -> AsyncIterator[Callable[..., Reader]]:
    """Starts readers (a Reader class, its URLs, the stream); all stop at the end."""
    started: list[Reader] = []

    def start(kind: type[Reader], urls: list[str], slug: str = "s") -> Reader:
        reader = kind(urls, slug)
        reader.start()
        started.append(reader)
        return reader

    yield start
    for reader in started:
        await reader.stop()


class Api:
    """The editor's HTTP client against a live server."""

    def __init__(self, base: str, editor: EditorLogin) -> None:
        self.client = httpx.AsyncClient(base_url=base, headers=editor.headers, timeout=10)

    async def stream(self, slug: str, status: str = "live") -> None:
        r = await self.client.post("/api/streams", json={"slug": slug, "title": slug.title(),
                                                         "status": status})
        assert r.status_code == 201, r.text

    async def post(self, slug: str, body: str) -> dict[str, Any]:
        r = await self.client.post(f"/api/streams/{slug}/posts", json={"body": body})
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result


@pytest.fixture
async def api(server: LiveServer, editor: EditorLogin) -> AsyncIterator[Api]:
    """An editor's API client for ``server``."""
    client = Api(server.base, editor)
    yield client
    await client.client.aclose()


async def ws_connect(url: str, **kwargs: Any) -> ClientConnection:
    """A websockets client with no compression (the server offers none)."""
    return await connect(url, compression=None, open_timeout=5, **kwargs)


async def recv(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    """The next frame, decoded."""
    result: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return result


async def subscribe(ws: ClientConnection, slug: str, since: int | None = None) -> int:
    """Subscribe and return the seq from the ``subscribed`` answer."""
    await ws.send(json.dumps({"type": "subscribe", "stream": slug, "since": since}))
    frame = await recv(ws)
    assert frame["type"] == "subscribed", frame
    seq: int = frame["seq"]
    return seq


# Frames outside any stream's seq that editors' connections are sent (presence, counts,
# notices that the posts that wait changed).
EDITOR_FRAMES = ("presence", "readers", "queue")


async def events(ws: ClientConnection, count: int, wait: float = 5) -> list[dict[str, Any]]:
    """The next ``count`` event frames (heartbeats, and editors' presence and reader
    counts, skipped)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        frame = await recv(ws, wait)
        if frame["type"] == "event":
            out.append(frame)
        else:
            assert frame["type"] in ("heartbeat", *EDITOR_FRAMES), frame
    return out


async def quiet(ws: ClientConnection, seconds: float = 0.3) -> None:
    """Assert nothing but heartbeats arrives for ``seconds``."""
    try:
        while True:
            frame = await recv(ws, seconds)
            assert frame["type"] == "heartbeat", f"unexpected frame {frame}"
    except TimeoutError:
        return


class RawClient:
    """A WebSocket client on a plain socket, for peers that misbehave on purpose:
    one that stops reading, one that never answers pings."""

    def __init__(self, port: int, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes((0x81, 0x80 | len(payload))) + mask + masked)

    def frames(self, timeout: float = 5) -> list[tuple[int, bytes]]:
        """Read until a close frame or EOF; every (opcode, payload) the server sent."""
        self.sock.settimeout(timeout)
        out: list[tuple[int, bytes]] = []
        data = self.buffer
        while True:
            while len(data) >= 2:
                opcode, n = data[0] & 0x0F, data[1] & 0x7F
                offset = 2
                if n == 126:
                    n, offset = struct.unpack("!H", data[2:4])[0], 4
                elif n == 127:
                    n, offset = struct.unpack("!Q", data[2:10])[0], 10
                if len(data) < offset + n:
                    break
                out.append((opcode, data[offset:offset + n]))
                data = data[offset + n:]
                if opcode == 0x8:
                    return out
            try:
                chunk = self.sock.recv(1 << 16)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            if not chunk:
                return out
            data += chunk

    def close(self) -> None:
        self.sock.close()
