"""SIGTERM on a real `bulletin serve` process with live WebSocket and SSE readers, and
the watchdog that ends a shutdown which outlives its limit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from bulletin.core import closecodes
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


REPOSITORY = Path(__file__).resolve().parents[2]
HANGING_SHUTDOWN = """
import time
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from bulletin.serving import BulletinServer, config
from bulletin.settings import Settings

settings = Settings(shutdown_seconds=1.0)


@asynccontextmanager
async def lifespan(app):
    print("ready", flush=True)
    yield
    time.sleep(60)  # a shutdown step that blocks the event loop


app = Starlette(lifespan=lifespan)
app.state.settings = settings
BulletinServer(config(app, settings, host="127.0.0.1", port=0, log_config=None), app).run()
"""


def test_a_shutdown_that_hangs_is_ended_by_the_watchdog() -> None:
    """A graceful shutdown stuck with the event loop blocked still ends the process soon
    after the shutdown limit, with one log line saying so and a failure status."""
    process = subprocess.Popen([sys.executable, "-c", HANGING_SHUTDOWN], cwd=REPOSITORY,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, output
    assert "shutdown did not finish within 2.0 s of the signal; exiting now" in output
    assert 1.5 < took < 4, f"exited {took:.1f} s after SIGTERM"
