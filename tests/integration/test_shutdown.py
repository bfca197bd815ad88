"""SIGTERM on a real `bulletin serve` process with live WebSocket and SSE readers."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from server import closecodes
from tests.conftest import EditorLogin
from tests.test_cli import _stop, _wait_ready, start_server

from .conftest import Api, events, recv, subscribe, ws_connect


async def test_sigterm_closes_readers_with_going_away_and_exits_promptly(
    database_url: str, editor: EditorLogin,
) -> None:
    """On SIGTERM, WebSocket readers get going-away, SSE streams end, the process exits
    well within the shutdown limit, and a restart resumes with nothing lost."""
    env = {**os.environ, "BULLETIN_DATABASE_URL": database_url,
           "BULLETIN_SECRET_KEY": "shutdown-test-secret-0123456789-abcdefghijk"}
    process, base = start_server(env)
    try:
        await asyncio.to_thread(_wait_ready, base, process)
        api = Api(base, editor)
        await api.stream("s")
        ws_url = base.replace("http", "ws") + "/ws"
        ws = await ws_connect(ws_url)
        await subscribe(ws, "s")
        await api.post("s", "one")
        (last,) = await events(ws, 1)
        await api.client.aclose()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client, client.stream(
            "GET", "/api/streams/s/events", headers={"Accept": "text/event-stream"}
        ) as sse:
            lines = sse.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws, 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == closecodes.GOING_AWAY.code
            rest = [line async for line in lines]
            sse_ended = time.monotonic() - started
        output = await asyncio.to_thread(_stop, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Application shutdown complete" in output
    assert all(not line.startswith("id:") for line in rest)
    # uvicorn would wait up to BULLETIN_SHUTDOWN_SECONDS (10) for an open SSE response;
    # the hub ends it at once instead.
    assert sse_ended < 5, f"SSE stream took {sse_ended:.1f}s to end"

    process, base = start_server(env)
    try:
        await asyncio.to_thread(_wait_ready, base, process)
        api = Api(base, editor)
        await api.post("s", "after restart")
        ws = await ws_connect(base.replace("http", "ws") + "/ws")
        assert await subscribe(ws, "s", since=last["seq"]) == last["seq"] + 1
        (event,) = await events(ws, 1)
        assert event["post"]["body"] == "after restart"
        await ws.close()
        await api.client.aclose()
    finally:
        await asyncio.to_thread(_stop, process)
