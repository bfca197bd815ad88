"""Hostile clients for ``floods.py``: what one anonymous client can throw at a server.

Each attack runs until its deadline and starts over whenever the server cuts it off,
counting the cut-offs:

- ``frames``:    subscribe/unsubscribe frames for a public stream as fast as it can send;
- ``pings``:     125-byte pings from a client with a tiny receive window that never reads;
- ``fragments``: a text frame with FIN=0, then empty continuation frames without end;
- ``idle``:      connections that send nothing, or half a request, and wait.

    python bench/attacks.py --port 8000 --stream bench --seconds 10 --kinds frames,pings
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import time
from collections import Counter

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

HANDSHAKE = ("GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n")


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (clients must mask), payload under 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(((0x80 if fin else 0) | opcode, 0x80 | len(payload))) + mask + body


async def raw_socket(host: str, port: int, rcvbuf: int | None = None
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand, for clients that misbehave below the library."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(HANDSHAKE.format(host=host, port=port, key=key).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head[:40])
    return reader, writer


async def frames(host: str, port: int, stream: str, deadline: float, cut: Counter[str]) -> None:
    pair = (json.dumps({"type": "subscribe", "stream": stream}),
            json.dumps({"type": "unsubscribe", "stream": stream}))
    while time.monotonic() < deadline:
        try:
            async with connect(f"ws://{host}:{port}/ws", compression=None) as ws:
                async def drain() -> None:
                    try:
                        async for _ in ws:
                            pass
                    except ConnectionClosed:
                        pass

                reading = asyncio.create_task(drain())
                n = 0
                while time.monotonic() < deadline and not reading.done():
                    await ws.send(pair[n % 2])
                    n += 1
                    if n % 50 == 0:
                        await asyncio.sleep(0)
                reading.cancel()
        except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError):
            pass
        cut["frames"] += 1


async def pings(host: str, port: int, deadline: float, cut: Counter[str]) -> None:
    ping = masked(0x9, b"p" * 125)
    while time.monotonic() < deadline:
        try:
            _reader, writer = await raw_socket(host, port, rcvbuf=4096)
            while time.monotonic() < deadline:
                writer.write(ping * 64)
                await asyncio.wait_for(writer.drain(), 2)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        cut["pings"] += 1


async def fragments(host: str, port: int, deadline: float, cut: Counter[str]) -> None:
    first = masked(0x1, b"", fin=False)
    empty = masked(0x0, b"", fin=False)
    while time.monotonic() < deadline:
        try:
            _reader, writer = await raw_socket(host, port)
            writer.write(first)
            while time.monotonic() < deadline:
                writer.write(empty * 1000)
                await asyncio.wait_for(writer.drain(), 2)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        cut["fragments"] += 1


async def idle(host: str, port: int, deadline: float, cut: Counter[str],
               count: int = 200) -> None:
    async def one(n: int) -> None:
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                if n % 2:
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                await asyncio.wait_for(reader.read(), max(0.1, deadline - time.monotonic()))
                writer.close()
                cut["idle"] += 1
            except (OSError, TimeoutError):
                pass

    await asyncio.gather(*(one(n) for n in range(count)))


async def attack(host: str, port: int, stream: str, seconds: float,
                 kinds: list[str]) -> Counter[str]:
    """Run the chosen attacks side by side for ``seconds``; the cut-offs of each."""
    deadline = time.monotonic() + seconds
    cut: Counter[str] = Counter()
    jobs = []
    for kind in kinds:
        if kind == "frames":
            jobs += [frames(host, port, stream, deadline, cut) for _ in range(2)]
        elif kind == "pings":
            jobs += [pings(host, port, deadline, cut) for _ in range(2)]
        elif kind == "fragments":
            jobs += [fragments(host, port, deadline, cut) for _ in range(2)]
        elif kind == "idle":
            jobs.append(idle(host, port, deadline, cut))
        else:
            raise SystemExit(f"unknown attack {kind!r}")
    await asyncio.gather(*jobs)
    return cut


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stream", default="bench")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--kinds", type=lambda v: v.split(","),
                        default=["frames", "pings", "fragments", "idle"])
    args = parser.parse_args()
    cut = asyncio.run(attack(args.host, args.port, args.stream, args.seconds, args.kinds))
    print(json.dumps(dict(cut)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
