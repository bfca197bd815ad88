"""Readers that follow one stream the way a well-behaved client does, and record every
event they are given (duplicates included), reconnecting with ``since`` when dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException


class Reader:
    """Base: the seqs received, in arrival order, and a way to wait for one."""

    def __init__(self, urls: list[str], slug: str) -> None:
        self.urls = urls
        self.slug = slug
        # The client's resume point (protocol: the last seq applied).
        self.last = 0
        self.seqs: list[int] = []
        self.connections = 0
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connect in the background (first URL first; the next one after each drop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Disconnect for good."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, seq: int, seconds: float = 20) -> None:
        """Wait until the event ``seq`` has arrived."""
        async def reached() -> None:
            while self.last < seq:
                self._changed.clear()
                await self._changed.wait()
        try:
            await asyncio.wait_for(reached(), seconds)
        except TimeoutError:
            raise AssertionError(f"{self} reached seq {self.last}, not {seq}") from None

    def got(self, frame: dict[str, Any]) -> None:
        """Record one event frame."""
        assert frame["stream"] == self.slug, frame
        self.seqs.append(frame["seq"])
        self.last = max(self.last, frame["seq"])
        self._changed.set()

    async def _run(self) -> None:
        index = 0
        while True:
            url = self.urls[index % len(self.urls)]
            try:
                self.connections += 1
                await self.follow(url)
            except (OSError, TimeoutError, WebSocketException, httpx.HTTPError):
                pass
            index += 1
            await asyncio.sleep(0.05)

    async def follow(self, url: str) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.urls[0]}, {self.slug})"


class WsReader(Reader):
    """A WebSocket reader."""

    async def follow(self, url: str) -> None:
        async with connect(url, compression=None, open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "subscribe", "stream": self.slug,
                                      "since": self.last}))
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "event":
                    self.got(frame)
                elif frame["type"] == "subscribed":
                    self.subscribed.set()
                else:
                    assert frame["type"] == "heartbeat", frame


class SseReader(Reader):
    """A Server-Sent Events reader that resumes with Last-Event-ID."""

    async def follow(self, url: str) -> None:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(self.last)}
        timeout = httpx.Timeout(5, read=None)
        async with httpx.AsyncClient(timeout=timeout) as client, client.stream(
                "GET", f"{url}/api/streams/{self.slug}/events", headers=headers) as response:
            if response.status_code != 200:
                raise httpx.HTTPError(f"status {response.status_code}")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    frame = json.loads(line[6:])
                    if frame["type"] == "event":
                        self.got(frame)
                    elif frame["type"] == "subscribed":
                        self.subscribed.set()


def exactly_once_in_order(reader: Reader, head: int) -> None:
    """Assert the reader got seqs 1..head, each once, in order."""
    assert reader.seqs == list(range(1, head + 1)), (
        f"{reader}: {len(reader.seqs)} events, missing "
        f"{sorted(set(range(1, head + 1)) - set(reader.seqs))[:10]}, "
        f"duplicated {sorted({s for s in reader.seqs if reader.seqs.count(s) > 1})[:10]}")

