"""What one hostile client can make a running server do, and access taken back.

A real server on a free port and real clients: a frame flood is cut off with 4009 while
other clients are answered at once, JSON nested to blow the parser's stack is an error,
not a traceback; a revoked token, a disabled editor or an ended session closes the
connections opened with it, on every process; the desk's cookie counts only on the
server's own pages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from bulletin.core import closecodes
from bulletin.store import accounts
from bulletin.store.db import Database
from bulletin.store.models import ApiToken, utcnow
from tests.conftest import EditorLogin, make_editor
from tests.test_cli import BULLETIN

from .conftest import Api, LiveServer, events, free_port, recv, subscribe, ws_connect
from .test_desk_sessions import session_cookie


async def close_code(ws: Any, wait: float = 10) -> int:
    """Read until the server closes; its close code."""
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
    except TimeoutError:
        pass
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        code: int = closed.rcvd.code
        return code
    raise AssertionError(f"still open after {wait} s")


class ServerProcess:
    """`bulletin serve` in a process of its own, its log in a file: what it costs in
    memory and log lines is measured from outside, as an operator would."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.database_url = f"sqlite+aiosqlite:///{tmp_path / 'abuse.db'}"
        self.log_path = tmp_path / "server.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*BULLETIN, "serve", "--port", str(self.port)], stdout=self.log,
            stderr=subprocess.STDOUT, text=True, env={
                **os.environ, "BULLETIN_DATABASE_URL": self.database_url,
                "BULLETIN_SECRET_KEY": "abuse-test-secret-0123456789-abcdefghijklmn",
                "BULLETIN_SHUTDOWN_SECONDS": "5", "BULLETIN_LOG_LEVEL": "warning", **env})

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def log_lines(self) -> list[str]:
        self.log.flush()
        return self.log_path.read_text().splitlines()

    def stop(self) -> float:
        """SIGTERM; the seconds it took to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("the server ignored SIGTERM") from None
        self.log.close()
        return time.monotonic() - started


@pytest.fixture
def process(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `bulletin serve` process on a private SQLite file."""
    server = ServerProcess(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class Prober(threading.Thread):
    """Another client, on its own thread: how long /healthz takes, every 0.1 s."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.waits: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.done.is_set():
                started = time.monotonic()
                assert client.get(f"{self.base}/healthz").status_code == 200
                self.waits.append(time.monotonic() - started)
                self.done.wait(0.1)


async def test_a_frame_flood_is_closed_with_4009_and_costs_the_server_nothing(
        process: ServerProcess) -> None:
    """Two connections (reconnecting whenever closed) send subscribe/unsubscribe for a
    public stream as fast as they can for 3 s: each connection is closed with
    too_many_requests, another client is answered in well under a second throughout,
    memory and the log stay flat, a reader is undisturbed, and SIGTERM still wins."""
    db = Database(process.database_url)
    try:
        editor = await make_editor(db, "alice")
    finally:
        await db.dispose()
    api = Api(process.base, editor)
    await api.stream("public")
    reader = await ws_connect(process.ws_url)
    await subscribe(reader, "public")
    before_rss, before_log = process.rss_mb(), len(process.log_lines())
    codes: list[int | str] = []
    pair = ('{"type":"subscribe","stream":"public"}',
            '{"type":"unsubscribe","stream":"public"}')
    deadline = time.monotonic() + 3

    async def attacker() -> None:
        while time.monotonic() < deadline:
            ws = await ws_connect(process.ws_url)
            # Read alongside (the client library stops reading once 16 frames wait), so
            # that the close frame is seen.
            closed = asyncio.create_task(close_code(ws, wait=10))
            try:
                # Each connection floods until the server closes it (the deadline only
                # stops new connections): one that stopped early, below the burst, would
                # rightly never be closed.
                for n in range(20_000):
                    await ws.send(pair[n % 2])
                    if n % 50 == 0:
                        await asyncio.sleep(0)
                        if closed.done():
                            break
            except ConnectionClosed:
                pass
            try:
                codes.append(await closed)
            except AssertionError as exc:
                await ws.close()
                codes.append(str(exc))

    prober = Prober(process.base)
    prober.start()
    await asyncio.gather(attacker(), attacker())
    await asyncio.sleep(0.5)
    prober.done.set()
    prober.join()
    assert codes and set(codes) == {closecodes.TOO_MANY_REQUESTS.code}, codes
    assert max(prober.waits) < 1.0, prober.waits
    assert process.rss_mb() - before_rss < 40
    # Warnings and errors only (the access log is off at this level): a few at most.
    assert len(process.log_lines()) - before_log < 10, process.log_lines()[before_log:]
    await api.post("public", "After the flood")
    (event,) = await events(reader, 1)
    assert event["post"]["body"] == "After the flood"
    await reader.close()
    await api.client.aclose()
    assert process.stop() < 5 + 2


async def test_the_burst_allows_an_app_to_follow_its_streams_at_once(
        server: LiveServer, api: Api) -> None:
    """An app subscribing to 100 streams at once on one connection is not cut off."""
    for n in range(100):
        await api.stream(f"s{n}")
    ws = await ws_connect(server.ws_url)
    for n in range(100):
        await ws.send(json.dumps({"type": "subscribe", "stream": f"s{n}"}))
    frames = [await recv(ws) for _ in range(100)]
    assert {f["type"] for f in frames} == {"subscribed"}
    await api.post("s99", "Still here")
    (event,) = await events(ws, 1)
    assert event["stream"] == "s99"
    await ws.close()


async def test_deeply_nested_json_in_a_frame_is_an_error_frame(
        server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """A 2 KB frame nested 1,000 deep gets a json_too_deep error, the connection stays
    open, and nothing is logged above INFO."""
    ws = await ws_connect(server.ws_url)
    with caplog.at_level(logging.INFO):
        await ws.send("[" * 1000 + "]" * 1000)
        frame = await recv(ws)
        assert (frame["type"], frame["code"]) == ("error", "json_too_deep")
        await ws.send('{"type":"subscribe","stream":"nope"}')
        assert (await recv(ws))["code"] == "stream_not_found"
    assert not [r for r in caplog.records if r.levelno > logging.INFO], caplog.text
    await ws.close()


async def test_deeply_nested_json_bodies_are_400s_in_json(
        server: LiveServer, editor: EditorLogin) -> None:
    """A body nested 20,000 deep is a 400 json_too_deep in the API's JSON error shape, on
    the API and on the desk's preview, and the server goes on."""
    deep = "[" * 20_000 + "]" * 20_000
    async with httpx.AsyncClient(base_url=server.base, headers=editor.headers) as client:
        for path in ("/api/streams", "/editor/preview"):
            response = await client.post(path, content=deep,
                                         headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["code"] == "json_too_deep"
        assert (await client.get("/healthz")).status_code == 200


async def test_unexpected_errors_answer_500_in_json_or_html(
        server: LiveServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A handler that fails unexpectedly answers a 500 in the JSON error shape (an HTML
    page on reader pages), never plain text, and logs one traceback, not one per
    request."""
    from bulletin.store import eventlog

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(eventlog, "list_streams", broken)
    async with httpx.AsyncClient(base_url=server.base) as client:
        with caplog.at_level(logging.ERROR):
            for _ in range(20):
                response = await client.get("/api/streams")
                assert response.status_code == 500
                assert response.headers["content-type"] == "application/json"
                assert response.json()["error"]["code"] == "internal_error"
        page = await client.get("/live")
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


async def test_unicode_digits_are_refused_as_numbers(
        server: LiveServer, api: Api, editor: EditorLogin) -> None:
    """A superscript or Arabic-Indic digit is a 400 where a seq is read, and is ignored
    where a page cursor is read: never a 500."""
    await api.stream("digits")
    sse = {"Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        for digit in ("\u00b2", "\u0663"):
            response = await client.get(f"/api/streams/digits/events?since={digit}",
                                        headers=sse)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "invalid_parameter"
            response = await client.get("/api/streams/digits/events",
                                        headers={**sse, "Last-Event-ID": digit.encode()})
            assert response.status_code == 400
        client.cookies.set("bulletin_session", await session_cookie(server))
        page = await client.get("/editor/streams/digits?before=\u00b2")
        assert page.status_code == 200


# --- access taken back ---------------------------------------------------------------------


async def revoke_in_database(server: LiveServer, editor: EditorLogin) -> None:
    """Revoke the editor's token behind the server's back (as another process would)."""
    db = Database(server.settings.database_url)
    try:
        async with db.write() as session:
            from sqlmodel import select

            token = (await session.exec(
                select(ApiToken).where(ApiToken.editor_id == editor.editor_id))).one()
            assert token.id is not None
            await accounts.revoke_token(session, token_id=token.id)
    finally:
        await db.dispose()


async def test_a_revoked_token_closes_its_open_connections(
        start_server: Any, editor: EditorLogin) -> None:
    """A WebSocket and an SSE connection opened with a token that follow a draft are
    closed (WebSocket: 4001) within a few seconds of the token being revoked."""
    server: LiveServer = await start_server(credential_check_seconds=0.5)
    api = Api(server.base, editor)
    await api.stream("plan", status="draft")
    ws = await ws_connect(server.ws_url, additional_headers=editor.headers)
    assert await subscribe(ws, "plan") == 0
    async with httpx.AsyncClient(base_url=server.base, headers=editor.headers,
                                 timeout=15) as client:
        async with client.stream("GET", "/api/streams/plan/events?since=0",
                                 headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            await revoke_in_database(server, editor)
            started = time.monotonic()
            assert await close_code(ws) == closecodes.UNAUTHORIZED.code
            async for _chunk in response.aiter_text():
                pass  # the response ends
            assert time.monotonic() - started < 5
    await api.client.aclose()


async def test_a_token_that_expires_closes_its_open_connections(
        start_server: Any, editor: EditorLogin) -> None:
    """A WebSocket opened with a token closes (4001) within a few seconds of the token's
    expiry passing, with no one announcing it; a new upgrade with it is refused with an
    error frame token_expired, then 4001."""
    server: LiveServer = await start_server(credential_check_seconds=0.5)
    db = Database(server.settings.database_url)
    try:
        async with db.write() as session:
            found = await accounts.editor_for_token(session, plain=editor.token)
            assert found is not None
            _editor, token = found
            token.expires_at = utcnow() + timedelta(seconds=2)
        ws = await ws_connect(server.ws_url, additional_headers=editor.headers)
        await ws.send('{"type":"subscribe","stream":"nope"}')
        assert (await recv(ws))["code"] == "stream_not_found"  # open, and registered
        started = time.monotonic()
        assert await close_code(ws) == closecodes.UNAUTHORIZED.code
        assert 1 < time.monotonic() - started < 6
        late = await ws_connect(server.ws_url, additional_headers=editor.headers)
        assert (await recv(late))["code"] == "token_expired"
        assert await close_code(late) == closecodes.UNAUTHORIZED.code
    finally:
        await db.dispose()


async def test_a_disabled_editor_is_closed_at_once_when_announced(
        start_server: Any, editor: EditorLogin) -> None:
    """Disabling an editor and announcing it closes their connections at once, long
    before the periodic check would."""
    server: LiveServer = await start_server(credential_check_seconds=600)
    ws = await ws_connect(server.ws_url, additional_headers=editor.headers)
    reader = await ws_connect(server.ws_url)
    await ws.send('{"type":"subscribe","stream":"nope"}')
    await recv(ws)  # the connection is registered with its credential
    db = Database(server.settings.database_url)
    try:
        async with db.write() as session:
            await accounts.set_disabled(session, editor_id=editor.editor_id, disabled=True)
    finally:
        await db.dispose()
    await server.app.state.services.live.credentials_changed()
    assert await close_code(ws, wait=3) == closecodes.UNAUTHORIZED.code
    await reader.send('{"type":"subscribe","stream":"nope"}')
    assert (await recv(reader))["code"] == "stream_not_found"  # readers stay
    await reader.close()


async def test_signing_out_closes_the_sessions_sockets(
        start_server: Any, editor: EditorLogin) -> None:
    """A desk session's WebSocket is closed with 4001 once the session is signed out."""
    server: LiveServer = await start_server(credential_check_seconds=0.5)
    cookie = await session_cookie(server)
    ws = await ws_connect(server.ws_url, additional_headers={
        "Cookie": f"bulletin_session={cookie}", "Origin": server.base})
    await ws.send('{"type":"subscribe","stream":"nope"}')
    await recv(ws)
    async with httpx.AsyncClient(base_url=server.base) as client:
        client.cookies.set("bulletin_session", cookie)
        page = await client.get("/editor")
        import re

        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        out = await client.post("/editor/logout", data={"csrf_token": token.group(1)})
        assert out.status_code == 303
    assert await close_code(ws) == closecodes.UNAUTHORIZED.code


async def test_a_revocation_reaches_the_other_process_through_the_broker(
        start_server: Any, redis_url: str, editor: EditorLogin) -> None:
    """A token revoked through one process closes its connection on another at once."""
    one: LiveServer = await start_server(broker_url=redis_url, credential_check_seconds=600)
    two: LiveServer = await start_server(broker_url=redis_url, credential_check_seconds=600)
    ws = await ws_connect(two.ws_url, additional_headers=editor.headers)
    await ws.send('{"type":"subscribe","stream":"nope"}')
    await recv(ws)
    await revoke_in_database(one, editor)
    await one.app.state.services.live.credentials_changed()
    assert await close_code(ws, wait=3) == closecodes.UNAUTHORIZED.code


async def test_the_cookie_gives_no_drafts_to_an_allowed_other_origin(
        start_server: Any, editor: EditorLogin) -> None:
    """A page on an origin in BULLETIN_ALLOWED_ORIGINS may open /ws, but the desk's
    cookie does not count there: drafts are not found; on the server's own page they
    are."""
    server: LiveServer = await start_server(allowed_origins=("https://partner.example",))
    api = Api(server.base, editor)
    await api.stream("plan", status="draft")
    cookie = await session_cookie(server)
    foreign = await ws_connect(server.ws_url, additional_headers={
        "Cookie": f"bulletin_session={cookie}", "Origin": "https://partner.example"})
    own = await ws_connect(server.ws_url, additional_headers={
        "Cookie": f"bulletin_session={cookie}", "Origin": server.base})
    await foreign.send('{"type":"subscribe","stream":"plan"}')
    assert (await recv(foreign))["code"] == "stream_not_found"
    assert await subscribe(own, "plan") == 0
    async with httpx.AsyncClient(base_url=server.base) as client:
        client.cookies.set("bulletin_session", cookie)
        sse = await client.get("/api/streams/plan/events", headers={
            "Accept": "text/event-stream", "Origin": "https://partner.example"})
        assert sse.status_code == 404
    await foreign.close()
    await own.close()
    await api.client.aclose()

