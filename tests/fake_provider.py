"""A fake oEmbed provider for tests: a real HTTP server on a free loopback port, in the
test's event loop, that answers, hangs, redirects, floods or turns hostile as each test
sets it up, and records every request it gets."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import ExifTags, Image


@dataclass
class Reply:
    """What the fake answers to one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds before answering; None: never answer (the connection stays open).
    delay: float | None = 0.0
    # Send the body in chunks with no Content-Length (a size limit must still cut it).
    chunked: bool = False

    @classmethod
    def json(cls, data: Any, **kwargs: Any) -> Reply:
        """A JSON answer."""
        return cls(body=json.dumps(data).encode(), **kwargs)

    @classmethod
    def hang(cls) -> Reply:
        """An answer that never comes."""
        return cls(delay=None)

    @classmethod
    def redirect(cls, location: str) -> Reply:
        """A 302 to ``location``."""
        return cls(status=302, headers={"Location": location})


@dataclass
class Seen:
    """One request the fake got."""

    path: str
    query: dict[str, str]


def gps_jpeg(size: tuple[int, int] = (640, 360)) -> bytes:
    """A JPEG carrying a camera's metadata: GPS position, owner, serial number."""
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = "Jane Secret"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N",
                                  ExifTags.GPS.GPSLatitude: (51.0, 30.0, 12.5)}
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "JPEG", exif=exif)
    return out.getvalue()


class FakeProvider:
    """Answers ``GET /oembed?url=<link>`` from ``answers`` (by link) and any other path
    from ``files``; anything else is a 404."""

    def __init__(self) -> None:
        self.answers: dict[str, Reply] = {}
        self.files: dict[str, Reply] = {}
        self.requests: list[Seen] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def origin(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The address of ``path`` on the fake."""
        return self.origin + path

    def calls(self, path: str = "/oembed") -> list[Seen]:
        """The requests made for ``path``."""
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection (hanging ones too)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
            parts = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.requests.append(Seen(parts.path, query))
            if parts.path == "/oembed":
                reply = self.answers.get(query.get("url", ""), Reply(status=404))
            else:
                reply = self.files.get(parts.path, Reply(status=404))
            if reply.delay is None:
                await asyncio.Event().wait()
            await asyncio.sleep(reply.delay)
            await self._write(writer, reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        lines = [f"HTTP/1.1 {reply.status} X", f"Content-Type: {reply.content_type}",
                 "Connection: close"]
        lines += [f"{k}: {v}" for k, v in reply.headers.items()]
        if reply.chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {len(reply.body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        if not reply.chunked:
            writer.write(reply.body)
        else:
            for start in range(0, len(reply.body), 16 * 1024):
                chunk = reply.body[start:start + 16 * 1024]
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        await writer.drain()
