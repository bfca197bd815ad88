"""The async engine and sessions: read sessions, and write sessions that commit as one.

On SQLite a process runs its write transactions one at a time (an asyncio lock, waited on
for at most the busy timeout): SQLite takes one writer at a time anyway, and writers
queued on the lock take their turn at once, where writers left to SQLite's busy handler
sleep and retry, which made the write p99 seconds under five concurrent editors. A write
that cannot start in time is ``DatabaseBusy`` (a 503 that says so), as is SQLite's own
"database is locked" from another process. The SQLite file is created readable by its
owner only (0600): it holds password hashes and drafts; SQLite gives its -wal and -shm
files the same mode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger("bulletin.db")

# SQLite waits this long for another writer before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Waits before trying the switch to WAL again when a new connection finds the file locked.
WAL_RETRY_DELAYS = (0.01, 0.05, 0.1, 0.25, 0.5)
# A PostgreSQL server that does not answer a new connection within this is unreachable
# (asyncpg's own default is 60 s: a write would hang that long before its 503).
CONNECT_TIMEOUT_SECONDS = 5

_WRITE = "bulletin_write"


class DatabaseBusy(Exception):
    """A write could not begin within the busy timeout: other writes hold the database."""


def is_locked(exc: BaseException) -> bool:
    """Whether a database error is SQLite's lock contention rather than an outage."""
    return "database is locked" in str(exc) or "database is busy" in str(exc)


def secure_sqlite_file(url: str) -> None:
    """Create a SQLite database file 0600, and take group and world access away from an
    existing one and its -wal/-shm files."""
    if not url.startswith("sqlite"):
        return
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = os.path.abspath(database)
    if not os.path.exists(path) and os.path.isdir(os.path.dirname(path)):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.stat(name).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not make %s private to its owner: %s", name, exc)


class Database:
    """Owns the engine. ``read()`` gives a session; ``write()`` one transaction that commits."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            # Under load a process may open twice as many more, closed again when idle.
            kwargs.update(pool_pre_ping=True, pool_size=pool_size, max_overflow=2 * pool_size,
                          connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            secure_sqlite_file(url)
            _configure_sqlite(self.engine)
        self._writer = self.engine.execution_options(**{_WRITE: True})
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    def pool_in_use(self) -> int:
        """Connections checked out of the pool now (for the metrics; 0 without a pool)."""
        checkedout = getattr(self.engine.pool, "checkedout", None)
        return int(checkedout()) if callable(checkedout) else 0

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; whatever it began is rolled back at the end."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: commits when the block succeeds, rolls back when it raises.

        On SQLite it begins IMMEDIATE, taking the write lock up front: a deferred
        transaction that reads and then writes fails at once in WAL mode when another
        writer got in between, instead of waiting its turn.
        """
        lock = self._write_lock
        if lock is None:
            async with AsyncSession(self._writer, expire_on_commit=False) as session:
                async with session.begin():
                    yield session
            return
        try:
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
                await lock.acquire()
        except TimeoutError:
            raise DatabaseBusy("other writes held the database for the whole busy "
                               "timeout") from None
        try:
            async with AsyncSession(self._writer, expire_on_commit=False) as session:
                async with session.begin():
                    yield session
        finally:
            lock.release()

    async def ping(self) -> None:
        """Run a trivial query; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))


async def _wal(connection: Any) -> None:
    """Switch an aiosqlite connection to WAL (a no-op when the file is in WAL already).

    Opening a connection while another one of the same file is checkpointing or closing
    can make this answer "database is locked" at once, without waiting out the busy
    timeout: it is tried again a few times, without holding up the event loop.
    """
    for delay in WAL_RETRY_DELAYS:
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            log.warning("SQLite was locked while opening a connection; trying again")
            await asyncio.sleep(delay)
    await connection.execute("PRAGMA journal_mode=WAL")


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First, so that the pragmas after it wait for a lock another connection holds
        # (switching to WAL takes one) instead of failing at once with "locked".
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        dbapi_connection.run_async(_wal)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
