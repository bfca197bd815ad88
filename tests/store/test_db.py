"""The database layer on SQLite: private files, writes taken in turn, contention named.

SQLite holds password hashes and drafts in a file: it is created readable by its owner
only, and so are its -wal and -shm files. A process runs its writes one at a time, so
concurrent editors queue instead of racing SQLite's busy handler; a write that cannot
start in time is a 503 ``database_busy``, not ``database_unavailable``.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import stat
from pathlib import Path

import httpx
import pytest

from bulletin.settings import Settings
from bulletin.store import db as db_module
from bulletin.store import migrate
from bulletin.store.db import Database
from bulletin.web.app import create_app
from tests.conftest import TEST_SECRET, make_editor
from tests.helpers import events, new_stream, snapshot


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_sqlite_file_and_its_wal_are_private(tmp_path: Path) -> None:
    """`db upgrade` and the server create the file 0600; the -wal/-shm files follow."""
    path = tmp_path / "new.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)
    assert mode(path) == 0o600
    database = Database(url)
    try:
        await make_editor(database, "alice")
        async with database.read() as session:
            await session.connection()
            for suffix in ("-wal", "-shm"):
                assert mode(tmp_path / f"new.db{suffix}") == 0o600
    finally:
        await database.dispose()


async def test_an_existing_readable_sqlite_file_is_made_private(tmp_path: Path,
                                                                sqlite_template: Path) -> None:
    """A database file others could read (made by an earlier version) is made 0600."""
    path = tmp_path / "old.db"
    shutil.copy(sqlite_template, path)
    path.chmod(0o644)
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.dispose()
    assert mode(path) == 0o600


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "bulletin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def test_a_write_that_cannot_start_is_database_busy_and_changes_nothing(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another process holds SQLite's write lock past the busy timeout, a post is
    answered 503 database_busy with Retry-After, and nothing is written."""
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 300)
    settings = Settings(database_url=sqlite_url, secret_key=TEST_SECRET, write_rate=1000.0,
                        write_burst=1000)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.services.db
        editor = await make_editor(database, "alice")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers=editor.headers) as client:
            await new_stream(client, "busy")
            before = await snapshot(database)
            other = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"),
                                    isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                response = await client.post("/api/streams/busy/posts",
                                             json={"body": "Held up"})
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_busy"
            assert response.headers["retry-after"] == "1"
            assert await snapshot(database) == before
            retried = await client.post("/api/streams/busy/posts", json={"body": "Held up"})
            assert retried.status_code == 201


async def test_concurrent_editors_on_sqlite_all_get_through_in_order(sqlite_url: str) -> None:
    """Five editors posting at once, 30 posts each, on one SQLite file: every post is
    accepted and the log is exactly 1..150."""
    settings = Settings(database_url=sqlite_url, secret_key=TEST_SECRET, write_rate=1000.0,
                        write_burst=1000)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.services.db
        editors = [await make_editor(database, f"editor{n}") for n in range(5)]
        transport = httpx.ASGITransport(app=app)
        clients = [httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers=e.headers) for e in editors]
        try:
            await new_stream(clients[0], "rush")

            async def post_all(client: httpx.AsyncClient, n: int) -> list[int]:
                codes = []
                for i in range(30):
                    r = await client.post("/api/streams/rush/posts",
                                          json={"body": f"{n}-{i}"})
                    codes.append(r.status_code)
                return codes

            results = await asyncio.gather(*(post_all(c, n) for n, c in enumerate(clients)))
            assert all(code == 201 for codes in results for code in codes)
            assert [e["seq"] for e in await events(clients[0], "rush")] == list(range(1, 151))
        finally:
            for client in clients:
                await client.aclose()


class _LockedAtFirst:
    """An aiosqlite connection whose switch to WAL finds the file locked ``times`` times."""

    def __init__(self, times: int, error: str = "database is locked") -> None:
        self.times = times
        self.error = error
        self.calls: list[str] = []

    async def execute(self, sql: str) -> None:
        self.calls.append(sql)
        if len(self.calls) <= self.times:
            raise sqlite3.OperationalError(self.error)


async def test_a_new_connection_that_finds_the_file_locked_tries_the_switch_to_wal_again(
        caplog: pytest.LogCaptureFixture) -> None:
    connection = _LockedAtFirst(times=2)
    await db_module._wal(connection)
    assert connection.calls == ["PRAGMA journal_mode=WAL"] * 3
    assert "locked while opening a connection" in caplog.text


async def test_the_switch_to_wal_gives_up_after_its_retries_and_on_other_errors() -> None:
    always = _LockedAtFirst(times=100)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await db_module._wal(always)
    assert len(always.calls) == len(db_module.WAL_RETRY_DELAYS) + 1
    broken = _LockedAtFirst(times=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        await db_module._wal(broken)
    assert len(broken.calls) == 1
