"""A lean WebSocket subscriber swarm for the fan-out benchmark.

Each subscriber is a bare ``asyncio.Protocol``: a hand-written upgrade request, then a
frame parser that does just enough per frame to measure it (find the post's marker and
its seq). Anything heavier (a full client library per connection, JSON parsing per
frame) would make the generator the bottleneck long before the server.

A delivery is a text frame carrying the marker ``bench-<index>-``: ``index`` says which
published message it is, so each connection counts lost and duplicate deliveries, and
the time it arrived minus the time the message was published is its latency.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import resource
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

MARK_RE = re.compile(rb"bench-(\d+)-")
SEQ_RE = re.compile(rb'"seq":(\d+)')
SUBSCRIBED = b'"type":"subscribed"'
HEARTBEAT = b'"type":"heartbeat"'

# Client frames are masked (RFC 6455 5.3). One key for the swarm is enough here: the
# server cannot tell, and masking is there against proxy cache poisoning, not for us.
_MASK = os.urandom(4)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = int.from_bytes((_MASK * (n // 4 + 1))[:n], "big") if n else 0
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
    return head + _MASK + masked


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Phase:
    """The messages of one measurement: publish times, and every delivery's latency."""

    count: int
    sent: array = field(init=False)          # perf_counter() at publish, by index
    latencies: array = field(default_factory=lambda: array("d"))
    first_sent: float = 0.0
    last_delivery: float = 0.0

    def __post_init__(self) -> None:
        self.sent = array("d", [0.0]) * self.count

    def publishing(self, index: int) -> None:
        now = time.perf_counter()
        if not self.first_sent:
            self.first_sent = now
        self.sent[index] = now


class Subscriber(asyncio.Protocol):
    """One WebSocket connection that subscribes to a stream and counts deliveries."""

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed_with: int | None = None
        self.lost_connection = False
        self.seen = bytearray()
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.last_seq = -1
        self.heartbeats = 0
        self.other_frames: list[bytes] = []

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        transport.write(self.swarm.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_connection = True
        for future in (self.opened, self.subscribed):
            if not future.done():
                future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:buf.find(b"\r\n")])
            if b" 101 " not in status + b" ":
                self.opened.set_exception(ConnectionError(f"upgrade refused: {status!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[:end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        self._frames(now)

    # frames

    def _frames(self, now: float) -> None:
        buf = self.buffer
        n = len(buf)
        pos = 0
        phase = self.swarm.phase
        while n - pos >= 2:
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 1:
                mark = MARK_RE.search(buf, start, end)
                if mark is not None and phase is not None:
                    self._delivery(phase, int(mark.group(1)), buf, start, end, now)
                elif buf.find(HEARTBEAT, start, end) >= 0:
                    self.heartbeats += 1
                elif buf.find(SUBSCRIBED, start, end) >= 0:
                    if not self.subscribed.done():
                        self.subscribed.set_result(None)
                else:
                    self.other_frames.append(bytes(buf[start:end]))
            elif opcode == 9:  # ping: answer, or the server drops us by ping timeout
                assert self.transport is not None
                self.transport.write(client_frame(10, bytes(buf[start:end])))
            elif opcode == 8:
                self.closed_with = (buf[start] << 8 | buf[start + 1]) if length >= 2 else 1005
            pos = end
        if pos:
            del buf[:pos]

    def _delivery(self, phase: Phase, index: int, buf: bytearray, start: int, end: int,
                  now: float) -> None:
        seen = self.seen
        if index >= len(seen):
            self.other_frames.append(bytes(buf[start:end]))
            return
        if seen[index]:
            self.duplicates += 1
            return
        seen[index] = 1
        self.received += 1
        if self.swarm.keep_sample:
            self.swarm.sample = bytes(buf[start:end])
        phase.latencies.append(now - phase.sent[index])
        if now > phase.last_delivery:
            phase.last_delivery = now
        seq = SEQ_RE.search(buf, start, end)
        if seq is not None:
            value = int(seq.group(1))
            if value <= self.last_seq:
                self.out_of_order += 1
            self.last_seq = value

    # client actions

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(1, text.encode()))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()


class Swarm:
    """N subscribers of one stream on one server."""

    def __init__(self, host: str, port: int, path: str = "/ws", *,
                 sources: Sequence[str] = ("127.0.0.1",)) -> None:
        self.host = host
        self.port = port
        self.sources = tuple(sources)
        self.subscribers: list[Subscriber] = []
        self.phase: Phase | None = None
        self.keep_sample = False  # keep the last delivered frame (to calibrate payloads)
        self.sample = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n\r\n"
        ).encode()

    async def connect(self, count: int, stream: str, *, concurrency: int = 200,
                      port: int | None = None) -> float:
        """Open ``count`` more connections (to ``port``, default the swarm's) and subscribe
        each; returns the seconds it took."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        gate = asyncio.Semaphore(concurrency)
        subscribe = f'{{"type":"subscribe","stream":"{stream}"}}'

        async def one(i: int) -> Subscriber:
            async with gate:
                source = self.sources[i % len(self.sources)]
                _transport, sub = await loop.create_connection(
                    lambda: Subscriber(self), self.host, port or self.port,
                    local_addr=(source, 0))
                await sub.opened
                sub.send_text(subscribe)
                await asyncio.wait_for(sub.subscribed, 30)
                return sub

        self.subscribers += await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - started

    def start_phase(self, count: int) -> Phase:
        """Reset the per-connection counters for ``count`` messages."""
        self.phase = Phase(count)
        for sub in self.subscribers:
            sub.seen = bytearray(count)
            sub.received = sub.duplicates = sub.out_of_order = 0
            sub.last_seq = -1  # the baseline numbers each phase from 1
        return self.phase

    def delivered(self) -> int:
        return sum(sub.received for sub in self.subscribers)

    async def wait_delivered(self, expected: int, *, idle: float = 5.0) -> None:
        """Wait until ``expected`` deliveries arrived, or none arrived for ``idle`` s."""
        last, last_change = -1, time.perf_counter()
        while True:
            got = self.delivered()
            if got >= expected:
                return
            if got != last:
                last, last_change = got, time.perf_counter()
            elif time.perf_counter() - last_change > idle:
                return
            await asyncio.sleep(0.02)

    def report(self, phase: Phase) -> dict[str, float | int]:
        """Lost, duplicate and out-of-order deliveries, and latency percentiles (ms)."""
        expected = phase.count * len(self.subscribers)
        got = self.delivered()
        lat = sorted(phase.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

        return {
            "subscribers": len(self.subscribers),
            "messages": phase.count,
            "expected": expected,
            "delivered": got,
            "lost": expected - got,
            "duplicates": sum(sub.duplicates for sub in self.subscribers),
            "out_of_order": sum(sub.out_of_order for sub in self.subscribers),
            "disconnected": sum(sub.lost_connection for sub in self.subscribers),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
            "seconds": round(phase.last_delivery - phase.first_sent, 3)
            if phase.last_delivery else 0.0,
        }

    def unexpected_frames(self) -> list[bytes]:
        return [frame for sub in self.subscribers for frame in sub.other_frames]

    async def close(self) -> None:
        for sub in self.subscribers:
            sub.close()
        self.subscribers = []
        await asyncio.sleep(0.5)  # let the server see the closes before the next phase
