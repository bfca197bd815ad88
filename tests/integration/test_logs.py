"""What a real server logs: no line per live connection, a summary line with the right
counts, one line per reset, and worker numbers on the lines of `serve --workers 2`."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import EditorLogin
from tests.test_cli import _wait_ready
from tests.test_cli import start_server as start_process

from .conftest import Api, LiveServer, recv, subscribe, ws_connect

READERS = 200


def _summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.__dict__ for r in caplog.records if r.name == "bulletin.summary"]


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):  # about 10 s
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_many_websocket_connects_write_no_line_each(
        server: LiveServer, api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """200 readers connecting, subscribing and leaving write nothing at INFO or above
    (uvicorn's line per accepted handshake included)."""
    await api.stream("big")
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="uvicorn.error"):
        sockets = await asyncio.gather(*(ws_connect(server.ws_url) for _ in range(READERS)))
        await asyncio.gather(*(subscribe(ws, "big") for ws in sockets))
        await asyncio.gather(*(ws.close() for ws in sockets))
        await _until(lambda: server.app.state.services.live.ws == 0, "the readers to go")
    lines = [r for r in caplog.records if r.levelno >= logging.INFO
             and r.name not in ("bulletin.summary", "bulletin.access")]
    assert lines == [], [r.getMessage() for r in lines[:5]]


async def test_the_summary_line_counts_readers_events_and_resets(
        start_server: Callable[..., Any], editor: EditorLogin,
        caplog: pytest.LogCaptureFixture) -> None:
    """Every log_summary_seconds a line gives the open WebSocket and SSE connections, and
    for the interval the connects, disconnects, events published, evictions and resets;
    a reset also writes a WARNING of its own. The SSE reader's access line comes when its
    stream ends, at DEBUG."""
    caplog.set_level(logging.INFO, logger="bulletin")
    caplog.set_level(logging.DEBUG, logger="bulletin.access")
    server: LiveServer = await start_server(log_summary_seconds=0.1, replay_limit=2)
    api = Api(server.base, editor)
    try:
        await api.stream("s")
        sockets = [await ws_connect(server.ws_url) for _ in range(3)]
        for ws in sockets:
            await subscribe(ws, "s")
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as sse, \
                sse.stream("GET", "/api/streams/s/events",
                           headers={"Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            await _until(lambda: any(s["ws"] == 3 and s["sse"] == 1
                                     for s in _summaries(caplog)), "3 WebSocket and 1 SSE")
            for n in range(4):
                await api.post("s", f"update {n}")
            late = await ws_connect(server.ws_url)
            await late.send(json.dumps({"type": "subscribe", "stream": "s", "since": 0}))
            assert (await recv(late))["type"] == "reset"
            for ws in [*sockets, late]:
                await ws.close()
            await _until(lambda: sum(s["resets"] for s in _summaries(caplog)) == 1
                         and sum(s["disconnects"] for s in _summaries(caplog)) == 4,
                         "the reset and the disconnects to be counted")
        await _until(lambda: _summaries(caplog)[-1]["sse"] == 0, "the SSE reader to go")
        summaries = _summaries(caplog)
        assert sum(s["connects"] for s in summaries) == 5
        assert sum(s["disconnects"] for s in summaries) == 5
        assert sum(s["published"] for s in summaries) == 4
        assert sum(s["evictions"] for s in summaries) == 0
        assert (summaries[-1]["ws"], summaries[-1]["sse"]) == (0, 0)
        assert all(s["levelname"] == "INFO" for s in summaries)
        resets = [r for r in caplog.records
                  if r.name == "bulletin.live" and "sent reset" in r.getMessage()]
        assert len(resets) == 1 and resets[0].levelno == logging.WARNING
        streams = [r.__dict__ for r in caplog.records if r.name == "bulletin.access"
                   and r.__dict__["route"] == "/api/streams/{slug}/events"]
        assert [(r["levelname"], r["status"]) for r in streams] == [("DEBUG", 200)]
    finally:
        await api.client.aclose()


def test_workers_number_their_json_lines(process_env: dict[str, str]) -> None:
    """`serve --workers 2` writes JSON lines; each worker's carry its number (1 or 2)
    and its own pid, the supervisor's carry worker 0."""
    env = {**process_env, "BULLETIN_LOG_LEVEL": "info", "BULLETIN_LOG_FORMAT": "json"}
    process, base = start_process(env, "--workers", "2")
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _wait_ready(base, process)
        deadline = time.monotonic() + 30
        while sum("Application startup complete" in line for line in lines) < 2:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        assert httpx.get(f"{base}/api/streams").status_code == 200
    finally:
        # Not _stop(): its communicate() would take lines from this reader.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(10)
        assert process.stdout is not None
        process.stdout.close()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and all({"time", "level", "logger", "pid", "worker", "message"} <= set(r)
                           for r in records)
    started = {r["worker"]: r["pid"] for r in records
               if r["message"] == "Application startup complete."}
    assert set(started) == {1, 2} and len(set(started.values())) == 2
    supervisor = [r for r in records if r["logger"] == "bulletin.supervisor"]
    assert supervisor and {r["worker"] for r in supervisor} == {0}
    assert process.pid in {r["pid"] for r in supervisor}
    assert not set(started.values()) & {process.pid}
    access = [r for r in records if r["logger"] == "bulletin.access"]
    assert access and access[-1]["route"] == "/api/streams" and access[-1]["worker"] in (1, 2)
