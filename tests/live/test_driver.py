"""The hub's I/O driver (``HubDriver``): bounded, shared, cancellable database reads.

The database is replaced by coroutines the test controls, so that what a client can make
the server read is counted exactly: one read per stream however many subscribe and
unsubscribe, at most ``max_loads`` at once, refusals once ``max_queued_loads`` wait, a
capped number of attempts, and reads nobody waits for stopped before they begin.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from bulletin.core.closecodes import CloseCode
from bulletin.core.prepared import Encoding
from bulletin.live import driver as live_module
from bulletin.live.brokers.memory import MemoryBroker
from bulletin.live.driver import HubDriver
from bulletin.settings import Settings


class FakeDb:
    """Stands in for Database: the reads are patched, so a session is never used."""

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        yield None


@dataclass
class FakeStream:
    status: str
    seq: int


class Reads:
    """The store's stream reads, held until the test lets them go (or made to fail)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()
        self.fail = False

    async def stream_head(self, session: Any, *, slug: str, window: int
                          ) -> tuple[FakeStream, list[str]] | None:
        self.started.append(slug)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            if self.fail:
                raise ConnectionError("database away")
            return FakeStream("live", 0), []
        finally:
            self.running -= 1


class Outlet:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed: CloseCode | None = None

    def write(self, data: bytes) -> int:
        self.writes.append(data)
        return 0

    def close(self, code: CloseCode) -> None:
        self.closed = code

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(w) for w in self.writes]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    result = Reads()
    monkeypatch.setattr(live_module.eventlog, "stream_head", result.stream_head)
    monkeypatch.setattr(live_module, "RETRY_FIRST", 0.001)
    return result


async def started(**overrides: Any) -> HubDriver:
    settings = Settings(secret_key="k" * 40, **overrides)
    broker = MemoryBroker()
    await broker.connect()
    live = HubDriver(settings=settings, db=FakeDb(), broker=broker)  # type: ignore[arg-type]
    await live.start()
    return live


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_subscribe_unsubscribe_loop_costs_one_read(reads: Reads) -> None:
    """A client that subscribes and unsubscribes a stream in a loop makes one database
    read, however many times it goes round, and the read serves whoever is there."""
    live = await started()
    try:
        outlet = Outlet()
        sub = live.connect(outlet, Encoding.MESSAGE)
        for _ in range(500):
            live.subscribe(sub, "s", None)
            await settle()
            live.unsubscribe(sub, "s")
        live.subscribe(sub, "s", None)
        await settle()
        assert reads.started == ["s"]
        reads.release.set()
        await settle()
        assert outlet.frames()[-1] == {"type": "subscribed", "stream": "s", "seq": 0}
    finally:
        await live.stop()


async def test_a_read_nobody_waits_for_is_cancelled_before_it_begins(reads: Reads) -> None:
    """Reads queued behind the bound are stopped when their subscribers leave: they never
    reach the database."""
    live = await started(max_loads=1)
    try:
        sub = live.connect(Outlet(), Encoding.MESSAGE)
        live.subscribe(sub, "a", None)
        await settle()
        for n in range(50):
            live.subscribe(sub, f"q{n}", None)
        await settle()
        for n in range(50):
            live.unsubscribe(sub, f"q{n}")
        await settle()
        reads.release.set()
        await settle()
        assert reads.started == ["a"]
        assert set(live.hub.channels) == {"a"}
    finally:
        await live.stop()


async def test_reads_in_flight_are_bounded_and_the_overflow_is_refused(reads: Reads) -> None:
    """At most max_loads reads run at once; past max_queued_loads waiting, a subscribe is
    answered at once with an 'unavailable' error instead of joining an endless queue."""
    live = await started(max_loads=2, max_queued_loads=3, max_subscriptions=100)
    try:
        outlet = Outlet()
        sub = live.connect(outlet, Encoding.MESSAGE)
        for n in range(10):
            live.subscribe(sub, f"s{n}", None)
        await settle()
        assert reads.running == 2
        refused = [f["stream"] for f in outlet.frames() if f.get("code") == "unavailable"]
        assert len(refused) == 5  # 10 asked, 2 reading, 3 waiting
        reads.release.set()
        await settle()
        await settle()
        assert reads.most == 2
        subscribed = {f["stream"] for f in outlet.frames() if f["type"] == "subscribed"}
        assert len(subscribed) == 5 and not subscribed & set(refused)
    finally:
        await live.stop()


async def test_a_read_that_keeps_failing_gives_up_and_says_so(
        reads: Reads, caplog: pytest.LogCaptureFixture) -> None:
    """A stream read that fails is tried a few times with back-off, then the subscriber
    gets 'unavailable' (and no traceback is logged per attempt)."""
    reads.fail = True
    reads.release.set()
    live = await started()
    try:
        outlet = Outlet()
        sub = live.connect(outlet, Encoding.MESSAGE)
        live.subscribe(sub, "s", None)
        for _ in range(200):
            if outlet.writes:
                break
            await asyncio.sleep(0.01)
        assert len(reads.started) == live_module.LOAD_ATTEMPTS
        assert outlet.frames() == [{"type": "error", "code": "unavailable", "stream": "s",
                                    "message": outlet.frames()[0]["message"]}]
        assert sub.closed is None and live.hub.channels == {}
        failures = [r for r in caplog.records if r.name == "bulletin.live"]
        assert len(failures) == live_module.LOAD_ATTEMPTS
        assert all(r.exc_info is None and "\n" not in r.getMessage() for r in failures)
    finally:
        await live.stop()


class SlowOutlet(Outlet):
    """An outlet whose client takes nothing: every write leaves it over any limit."""

    def write(self, data: bytes) -> int:
        super().write(data)
        return 1 << 40


async def test_a_slow_connection_closed_is_one_warning_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    """A connection closed as slow writes one WARNING when it ends, and the summary counts
    it with the connects and disconnects of the interval."""
    from bulletin.core import closecodes
    from bulletin.live.summary import Summary

    live = await started()
    try:
        summary = Summary(live)
        fine = live.connect(Outlet(), Encoding.SSE)
        slow = live.connect(SlowOutlet(), Encoding.FRAME)
        assert summary.fields(60)["ws"] == 1
        with caplog.at_level(logging.INFO, logger="bulletin"):
            live.hub.heartbeat()
            assert slow.closed is closecodes.SLOW and fine.closed is None
            live.disconnect(slow)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "slow WebSocket connection" in warnings[0].getMessage()
        assert summary.fields(60) == {"ws": 0, "sse": 1, "connects": 0, "disconnects": 1,
                                      "published": 0, "received": 0, "evictions": 1,
                                      "resets": 0, "interval_s": 60}
        live.disconnect(fine)
        assert summary.fields(60)["sse"] == 0
    finally:
        await live.stop()


async def test_a_database_outage_is_one_line_and_its_end_another(
        reads: Reads, caplog: pytest.LogCaptureFixture) -> None:
    """Reads failing while the database is away say so once on bulletin.database, and the
    first read that succeeds again says it is back."""
    reads.fail = True
    reads.release.set()
    live = await started()
    try:
        with caplog.at_level(logging.WARNING, logger="bulletin"):
            live.subscribe(live.connect(Outlet(), Encoding.MESSAGE), "s", None)
            for _ in range(200):
                if len(reads.started) >= 2:
                    break
                await asyncio.sleep(0.01)
            reads.fail = False
            ok = Outlet()
            live.subscribe(live.connect(ok, Encoding.MESSAGE), "s", None)
            for _ in range(200):
                if any(f["type"] == "subscribed" for f in ok.frames()):
                    break
                await asyncio.sleep(0.01)
        lines = [r.getMessage() for r in caplog.records if r.name == "bulletin.database"]
        assert len(lines) == 2, lines
        assert lines[0].startswith("the database failed a read")
        assert lines[1].startswith("the database answers again")
    finally:
        await live.stop()
