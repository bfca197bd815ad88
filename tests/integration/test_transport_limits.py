"""Transport limits, attacked over raw sockets: what one client can make the server hold.

Each test attacks a real `bulletin serve` process (so that its memory and file
descriptors can be read from /proc) with a bounded number of raw-socket clients for a
bounded time, and checks that the attack is cut off as docs/protocol.md "Limits" says,
that another client's GET /healthz is answered in well under a second while it goes on,
that the server's memory stays bounded, and that its log stays quiet: no traceback, no
line per frame or per connection.
"""

from __future__ import annotations

import base64
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulletin.core import closecodes
from bulletin.store import migrate
from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor, run_async
from tests.test_cli import BULLETIN, free_port

from .conftest import RawClient

OP_CONT, OP_TEXT, OP_CLOSE, OP_PING = 0x0, 0x1, 0x8, 0x9
# The grace a closed connection gets to take its last bytes, in these tests.
GRACE = 2.0
# "Responsive": another client's request is answered within this (it takes milliseconds).
RESPONSIVE = 1.0
# How much the server's memory may grow during an attack (it grew by hundreds of MB).
RSS_GROWTH_LIMIT_KB = 60 * 1024
TCP_ESTABLISHED = 1
# Posts of about 120 KB as events (the body and its HTML), and enough of them to fill a
# never-reading reader's kernel buffers (up to 4 MB on Linux) and then the server's limit.
BIG_POSTS = {"max_post_chars": 60_000, "max_body_bytes": 256 * 1024}
BIG_BODY = "lorem ipsum dolor sit amet " * 2200
POSTS_PAST_KERNEL_BUFFERS = 60


# --- the server under attack -------------------------------------------------------------


@dataclass
class Served:
    """A `bulletin serve` process: its address, memory, descriptors and log."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    editor: EditorLogin

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kb(self) -> int:
        """Resident memory of the server process, in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def socket_fds(self) -> int:
        """Socket descriptors the server process holds (its listener among them)."""
        fds = Path(f"/proc/{self.process.pid}/fd")
        count = 0
        for fd in fds.iterdir():
            try:
                count += os.readlink(fd).startswith("socket:")
            except FileNotFoundError:
                pass  # closed meanwhile
        return count

    def sockets(self) -> int:
        """TCP sockets on the server's port other than the listener, orphans included
        (a socket closed with unsent bytes lives on in the kernel without a descriptor)."""
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except FileNotFoundError:
                continue
            for line in lines:
                fields = line.split()
                local, state = fields[1], fields[3]
                if int(local.rsplit(":", 1)[1], 16) == self.port and state != "0A":
                    count += 1
        return count

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def healthz_seconds(self) -> float:
        """How long a new client waits for GET /healthz."""
        started = time.monotonic()
        r = httpx.get(f"{self.base}/healthz", timeout=10)
        assert r.status_code == 200
        return time.monotonic() - started


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Starts `bulletin serve` on a fresh SQLite database with settings overrides
    (``close_grace_seconds=...``); every one started is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**settings: Any) -> Served:
        n = len(started)
        url = f"sqlite+aiosqlite:///{tmp_path / f'limits{n}.db'}"
        migrate.upgrade(url)
        db = Database(url)
        try:
            editor = run_async(make_editor(db, "alice"))
        finally:
            run_async(db.dispose())
        env = {**os.environ, "BULLETIN_DATABASE_URL": url, "BULLETIN_LOG_LEVEL": "warning",
               "BULLETIN_SECRET_KEY": "transport-limits-secret-0123456789-abcdefgh",
               "BULLETIN_WRITE_RATE": "1000", "BULLETIN_WRITE_BURST": "1000",
               "BULLETIN_CLOSE_GRACE_SECONDS": str(GRACE)}
        env.update({f"BULLETIN_{name.upper()}": str(value) for name, value in settings.items()})
        port = free_port()
        log_path = tmp_path / f"server{n}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen([*BULLETIN, "serve", "--port", str(port)], env=env,
                                       stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        served = Served(process, port, log_path, editor)
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"server exited:\n{served.log()}"
            try:
                if httpx.get(f"{served.base}/readyz", timeout=1).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server did not start:\n{served.log()}"
            time.sleep(0.1)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def during(served: Served, attack: Callable[[], object], *, threads: int = 1) -> float:
    """Run ``attack`` in ``threads`` threads; while any runs, keep asking for /healthz.
    Returns the slowest answer (at least one is always asked)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            attack()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    slowest = served.healthz_seconds()
    while any(worker.is_alive() for worker in workers):
        slowest = max(slowest, served.healthz_seconds())
        time.sleep(0.1)
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return slowest


def assert_quiet(served: Served) -> None:
    """Nothing like a line per frame or per connection, and at most one traceback per
    cause (what the log throttle lets through)."""
    log = served.log()
    lines = log.splitlines()
    causes = [lines[i - 1] for i, line in enumerate(lines) if line.startswith("Traceback")]
    assert len(causes) == len(set(causes)), log[-5000:]
    assert len(lines) < 60, log[-5000:]


# --- raw clients ------------------------------------------------------------------------


class Peer(RawClient):
    """RawClient with a handshake that fails (and closes its socket) rather than waits
    when the server closes or does not answer."""

    def __init__(self, port: int, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        try:
            if rcvbuf is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(10)
            self.sock.connect(("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16))
            self.sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                              b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                              % (port, key))
            self.buffer = b""
            while b"\r\n\r\n" not in self.buffer:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                self.buffer += chunk
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"handshake refused: {head[:100]!r}")
        except BaseException:
            self.sock.close()
            raise


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A client frame (masked with a zero key, which leaves the payload as it is)."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((first, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((first, 0x80 | 127)) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    """The code of the close frame among ``frames``, if there is one."""
    for opcode, payload in frames:
        if opcode == OP_CLOSE:
            code: int = struct.unpack("!H", payload[:2])[0]
            return code
    return None


def flood(client: RawClient, burst: bytes, *, seconds: float, max_bytes: int,
          first: bytes = b"") -> list[tuple[int, bytes]]:
    """Send ``first``, then ``burst`` again and again until the server closes, ``seconds``
    pass or ``max_bytes`` are sent, reading what arrives; returns the frames read."""
    sock = client.sock
    sock.settimeout(2)
    sock.sendall(first)
    deadline = time.monotonic() + seconds
    sent = 0
    received = b""
    while time.monotonic() < deadline and sent < max_bytes:
        try:
            sock.sendall(burst)
        except (OSError, TimeoutError):
            break
        sent += len(burst)
        if select.select([sock], [], [], 0)[0]:
            try:
                chunk = sock.recv(1 << 16)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
            if close_code(parse_frames(received)) is not None:
                break
    client.buffer = received
    return client.frames(timeout=3)


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The complete server frames at the start of ``data``."""
    out: list[tuple[int, bytes]] = []
    while len(data) >= 2:
        opcode, n, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if n == 126:
            n, offset = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            n, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + n:
            break
        out.append((opcode, data[offset:offset + n]))
        data = data[offset + n:]
    return out


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of ``sock`` (1 established), read without reading data."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0]


def http_exchange(port: int, request: bytes, *, wait: float) -> bytes:
    """Send ``request`` (perhaps unfinished) and return what the server answers before it
    closes, or within ``wait`` seconds."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        return read_until_closed(sock, wait)


def read_until_closed(sock: socket.socket, wait: float) -> bytes:
    """Everything the peer sends until it closes, for at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    data = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data + b"<reset>"
        if not chunk:
            return data + b"<closed>"
        data += chunk
    return data


# --- 1. messages in endless fragments ---------------------------------------------------


def test_endless_message_of_empty_fragments_is_closed_with_1009(
    limited: Callable[..., Served],
) -> None:
    """A text frame without FIN followed by a flood of empty continuation frames is closed
    with 1009 after max_fragments; two such clients leave the server responsive, its
    memory flat and its log quiet."""
    served = limited(max_fragments=64)
    before = served.rss_kb()
    empties = frame(OP_CONT, fin=False) * 10_000  # 60 KB of empty fragments
    codes: list[int | None] = []

    def attack() -> None:
        client = Peer(served.port)
        try:
            frames = flood(client, empties, first=frame(OP_TEXT, b"{", fin=False),
                           seconds=6, max_bytes=200 << 20)
            codes.append(close_code(frames))
        finally:
            client.close()

    assert during(served, attack, threads=2) < RESPONSIVE
    assert codes == [closecodes.MESSAGE_TOO_BIG.code] * 2
    assert served.rss_kb() - before < RSS_GROWTH_LIMIT_KB
    assert served.healthz_seconds() < RESPONSIVE
    assert_quiet(served)


def test_fragments_that_add_up_past_max_frame_bytes_are_closed_with_1009(
    limited: Callable[..., Served],
) -> None:
    """The bytes of a message being assembled are bounded by max_frame_bytes over all its
    fragments (websockets' max_size), however few fragments it takes."""
    served = limited(max_frame_bytes=4096, max_fragments=64)
    client = Peer(served.port)
    try:
        fragments = frame(OP_TEXT, b"[" + b"1," * 499, fin=False) + b"".join(
            frame(OP_CONT, b"1," * 500, fin=False) for _ in range(10))
        client.sock.sendall(fragments)
        assert close_code(client.frames(5)) == closecodes.MESSAGE_TOO_BIG.code
    finally:
        client.close()
    assert served.healthz_seconds() < RESPONSIVE
    assert_quiet(served)


def test_a_message_in_max_fragments_is_still_taken(limited: Callable[..., Served]) -> None:
    """A message in exactly max_fragments fragments is an ordinary message."""
    served = limited(max_fragments=8)
    client = Peer(served.port)
    try:
        text = b'{"type":"subscribe","stream":"nowhere"}'
        pieces = [text[i:i + 5] for i in range(0, 40, 5)]
        assert len(pieces) == 8
        client.sock.sendall(frame(OP_TEXT, pieces[0], fin=False) + b"".join(
            frame(OP_CONT, piece, fin=i == len(pieces) - 1)
            for i, piece in enumerate(pieces[1:], 1)))
        client.sock.settimeout(5)
        data = client.buffer
        while not parse_frames(data):
            data += client.sock.recv(4096)
        opcode, payload = parse_frames(data)[0]
        assert opcode == OP_TEXT and b'"error"' in payload and b"not_found" in payload
    finally:
        client.close()


# --- 2. pongs owed to a reader that never reads -----------------------------------------


def test_ping_flood_from_a_reader_that_never_reads_is_closed_as_slow(
    limited: Callable[..., Served],
) -> None:
    """Pongs count in the outgoing byte limit: a client that sends pings and never reads
    is closed with 4000 slow, is no longer read from, and is reset after the grace,
    with the server's memory flat."""
    served = limited(send_queue_bytes=256 * 1024)
    before = served.rss_kb()
    pings = frame(OP_PING, b"p" * 125) * 500  # 65 KB of 125-byte pings
    outcome: dict[str, Any] = {}

    def attack() -> None:
        client = Peer(served.port, rcvbuf=4096)
        sock = client.sock
        sock.settimeout(1)
        started = time.monotonic()
        sent = 0
        try:
            # Never read; stop once the server stops reading us (a send blocks).
            while time.monotonic() - started < 15 and sent < 400 << 20:
                try:
                    sock.sendall(pings)
                except TimeoutError:
                    break
                sent += len(pings)
            outcome["stalled_after"] = time.monotonic() - started
            outcome["rss_during"] = served.rss_kb()
            # Now read: the pongs the server had taken on, then its close frame, then
            # the end of the connection, all within the grace.
            frames = client.frames(timeout=GRACE + 3)
            outcome["code"] = close_code(frames)
        finally:
            client.close()

    assert during(served, attack) < RESPONSIVE
    assert outcome["stalled_after"] < 10, "the server kept reading a client that never reads"
    assert outcome["code"] == closecodes.SLOW.code
    assert outcome["rss_during"] - before < RSS_GROWTH_LIMIT_KB
    assert served.healthz_seconds() < RESPONSIVE
    assert_quiet(served)


# --- 3. closes that end: readers that never read ----------------------------------------


def test_readers_that_never_read_are_reset_after_the_grace(
    limited: Callable[..., Served],
) -> None:
    """20 WebSocket and 20 SSE readers that never read, made slow by big posts, are
    evicted and then reset within the grace: their sockets are gone on both sides."""
    served = limited(send_queue_bytes=64 * 1024, ping_seconds=600, **BIG_POSTS)
    api = httpx.Client(base_url=served.base, headers=served.editor.headers, timeout=30)
    r = api.post("/api/streams", json={"slug": "s", "title": "S", "status": "live"})
    assert r.status_code == 201, r.text
    baseline_fds, baseline_sockets = served.socket_fds(), served.sockets()

    ws_readers = [Peer(served.port, rcvbuf=4096) for _ in range(20)]
    for reader in ws_readers:
        reader.send_text('{"type":"subscribe","stream":"s"}')
    sse_readers = []
    for _ in range(20):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", served.port))
        sock.sendall(b"GET /api/streams/s/events HTTP/1.1\r\nHost: x\r\n"
                     b"Accept: text/event-stream\r\n\r\n")
        sse_readers.append(sock)
    sockets = [reader.sock for reader in ws_readers] + sse_readers
    try:
        deadline = time.monotonic() + 10
        while served.sockets() < baseline_sockets + 40:
            assert time.monotonic() < deadline, "readers did not connect"
            time.sleep(0.05)
        # The kernel takes up to 4 MB for each reader before the server holds any.
        for n in range(POSTS_PAST_KERNEL_BUFFERS):
            assert api.post("/api/streams/s/posts", json={"body": f"{n} {BIG_BODY}"}
                            ).status_code == 201
        posted = time.monotonic()
        assert served.healthz_seconds() < RESPONSIVE
        while any(tcp_state(sock) == TCP_ESTABLISHED for sock in sockets):
            open_ = sum(tcp_state(sock) == TCP_ESTABLISHED for sock in sockets)
            assert time.monotonic() - posted < GRACE + 5, f"{open_} readers still connected"
            time.sleep(0.1)
        while served.sockets() > baseline_sockets:
            assert time.monotonic() - posted < GRACE + 6, "server still holds the sockets"
            time.sleep(0.1)
        assert served.socket_fds() <= baseline_fds
    finally:
        for sock in sockets:
            sock.close()
        api.close()
    assert served.healthz_seconds() < RESPONSIVE
    assert_quiet(served)


# --- 4. HTTP as exposed without a proxy ---------------------------------------------------


def test_an_oversized_request_header_is_answered_431(limited: Callable[..., Served]) -> None:
    """A request head over max_header_bytes is answered 431 and closed, not read to the
    end: a 64 MB header is refused after its first kilobytes."""
    served = limited(max_header_bytes=16 * 1024)
    before = served.rss_kb()
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        sent = 0
        answered = b""
        while sent < 64 << 20:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                break
        answered = read_until_closed(sock, 5)
    assert answered.startswith(b"HTTP/1.1 431 "), answered[:200]
    assert sent < 8 << 20, f"the server read {sent} bytes of one header"
    assert served.rss_kb() - before < RSS_GROWTH_LIMIT_KB
    assert served.healthz_seconds() < RESPONSIVE
    # Just under the limit is an ordinary request.
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
    filler = b"a" * (16 * 1024 - len(head) - 8)
    answer = http_exchange(served.port, head + filler + b"\r\nConnection: close\r\n\r\n",
                           wait=5)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert_quiet(served)


def test_unfinished_huge_headers_on_many_connections_hold_no_memory(
    limited: Callable[..., Served],
) -> None:
    """Eight connections each sending an unfinished 32 MB header are each answered 431;
    the server's memory stays flat and it stays responsive."""
    served = limited()
    before = served.rss_kb()
    answers: list[bytes] = []
    lock = threading.Lock()

    def attack() -> None:
        with socket.create_connection(("127.0.0.1", served.port)) as sock:
            sock.settimeout(5)
            sock.sendall(b"POST /api/streams HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"b" * (256 * 1024)
            for _ in range(128):
                try:
                    sock.sendall(chunk)
                except OSError:
                    break
                if select.select([sock], [], [], 0)[0]:
                    break
            answer = read_until_closed(sock, 5)
        with lock:
            answers.append(answer)

    assert during(served, attack, threads=8) < RESPONSIVE
    assert len(answers) == 8
    assert all(a.startswith(b"HTTP/1.1 431 ") for a in answers), [a[:40] for a in answers]
    assert served.rss_kb() - before < RSS_GROWTH_LIMIT_KB
    assert_quiet(served)


def test_silent_and_unfinished_requests_are_answered_408_in_time(
    limited: Callable[..., Served],
) -> None:
    """A silent connection, a partial request line, partial headers, a half-sent
    WebSocket upgrade and a body that never arrives are each answered 408 and closed
    within their timeout; an idle keep-alive connection is closed after keepalive_seconds,
    and a next request that stalls after its first byte gets 408 too."""
    served = limited(header_timeout_seconds=2, body_timeout_seconds=2, keepalive_seconds=1)
    attempts = {
        "silent": b"",
        "request line": b"GET /healthz HT",
        "headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: text/",
        "websocket upgrade": b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        **{f"body {n}": b"POST /editor/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nusername=al"
           for n in range(5)},
    }
    answers: dict[str, tuple[bytes, float]] = {}
    lock = threading.Lock()

    def attempt(name: str, request: bytes) -> None:
        started = time.monotonic()
        answer = http_exchange(served.port, request, wait=8)
        with lock:
            answers[name] = (answer, time.monotonic() - started)

    threads = [threading.Thread(target=attempt, args=item) for item in attempts.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, (answer, took) in answers.items():
        assert answer.startswith(b"HTTP/1.1 408 "), (name, answer[:200])
        assert answer.endswith((b"<closed>", b"<reset>")), (name, answer[-50:])
        assert 1.5 < took < 2 + 3, (name, took)

    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_until_closed(sock, 6)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"<closed>"), answer
        assert time.monotonic() - started < 1 + 2
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"G")
        started = time.monotonic()
        answer = read_until_closed(sock, 8)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert 1.5 < time.monotonic() - started < 2 + 3
    assert_quiet(served)


def test_hundreds_of_idle_connections_are_closed(limited: Callable[..., Served]) -> None:
    """Connections that never send a byte are closed after header_timeout_seconds, not
    kept for ever: the server's descriptors return to where they were."""
    served = limited(header_timeout_seconds=2)
    baseline = served.socket_fds()
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(500)]
    try:
        time.sleep(0.5)
        assert served.socket_fds() >= baseline + 400
        assert served.healthz_seconds() < RESPONSIVE
        started = time.monotonic()
        while (held := served.socket_fds() - baseline) > 0:
            assert time.monotonic() - started < 2 + 5, f"{held} still open"
            time.sleep(0.1)
    finally:
        for sock in idle:
            sock.close()
    assert_quiet(served)


def test_keep_alive_streaming_bodies_sse_and_websockets_still_work(
    limited: Callable[..., Served],
) -> None:
    """The limits leave ordinary traffic alone: several requests on one keep-alive
    connection, a request body streamed in pieces within the timeout, and SSE and
    WebSocket connections that stay open past every HTTP timeout."""
    served = limited(header_timeout_seconds=1, body_timeout_seconds=1, keepalive_seconds=1)
    with httpx.Client(base_url=served.base, headers=served.editor.headers) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(0.3)
        r = client.post("/api/streams", json={"slug": "s", "title": "S", "status": "live"})
        assert r.status_code == 201, r.text

        def pieces() -> Iterator[bytes]:
            yield b'{"body": '
            time.sleep(0.3)
            yield b'"streamed in pieces"}'

        r = client.post("/api/streams/s/posts", content=pieces(),
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text

    sse = socket.create_connection(("127.0.0.1", served.port))
    sse.sendall(b"GET /api/streams/s/events?since=0 HTTP/1.1\r\nHost: x\r\n"
                b"Accept: text/event-stream\r\n\r\n")
    ws = Peer(served.port)
    try:
        ws.send_text('{"type":"subscribe","stream":"s","since":0}')
        time.sleep(3)  # past the header, body and keep-alive timeouts
        with httpx.Client(base_url=served.base, headers=served.editor.headers) as client:
            r = client.post("/api/streams/s/posts", json={"body": "after the timeouts"})
            assert r.status_code == 201, r.text
        sse.settimeout(5)
        data = b""
        while b"after the timeouts" not in data:
            chunk = sse.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
        ws.sock.settimeout(5)
        data = ws.buffer
        while b"after the timeouts" not in data:
            chunk = ws.sock.recv(65536)
            assert chunk, data
            data += chunk
    finally:
        sse.close()
        ws.close()
    assert_quiet(served)


# --- 5. SIGTERM always wins -------------------------------------------------------------


def test_sigterm_under_attack_exits_within_the_shutdown_limit(
    limited: Callable[..., Served],
) -> None:
    """Under a flood of empty fragments, with readers that never read and silent
    connections, SIGTERM still ends the process within BULLETIN_SHUTDOWN_SECONDS."""
    served = limited(shutdown_seconds=4, send_queue_bytes=64 * 1024, ping_seconds=600,
                     **BIG_POSTS)
    api = httpx.Client(base_url=served.base, headers=served.editor.headers, timeout=30)
    assert api.post("/api/streams", json={"slug": "s", "title": "S", "status": "live"}
                    ).status_code == 201
    readers = [Peer(served.port, rcvbuf=4096) for _ in range(20)]
    for reader in readers:
        reader.send_text('{"type":"subscribe","stream":"s"}')
    sse = []
    for _ in range(20):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", served.port))
        sock.sendall(b"GET /api/streams/s/events HTTP/1.1\r\nHost: x\r\n"
                     b"Accept: text/event-stream\r\n\r\n")
        sse.append(sock)
    silent = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(100)]
    stop = threading.Event()

    def fragments() -> None:
        empties = frame(OP_CONT, fin=False) * 10_000
        while not stop.is_set():
            try:
                client = Peer(served.port)
            except OSError:
                return  # the server has stopped accepting
            try:
                flood(client, empties, first=frame(OP_TEXT, b"{", fin=False), seconds=2,
                      max_bytes=50 << 20)
            except OSError:
                pass
            finally:
                client.close()

    flooders = [threading.Thread(target=fragments, daemon=True) for _ in range(2)]
    try:
        for flooder in flooders:
            flooder.start()
        for n in range(POSTS_PAST_KERNEL_BUFFERS):
            api.post("/api/streams/s/posts", json={"body": f"{n} {BIG_BODY}"})
        started = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.wait(4 + 3)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {time.monotonic() - started:.1f} s after SIGTERM")
        took = time.monotonic() - started
    finally:
        stop.set()
        for flooder in flooders:
            flooder.join(10)
        for sock in [r.sock for r in readers] + sse + silent:
            sock.close()
        api.close()
    assert took < 4 + 2, f"took {took:.1f} s"
    assert served.process.returncode in (0, -signal.SIGTERM), served.log()[-3000:]
    assert "Traceback" not in served.log(), served.log()[-5000:]
