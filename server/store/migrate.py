"""Apply Alembic migrations from code (the CLI and tests), with the repository's scripts,
and tell where a database's schema stands.

Several processes may upgrade one database at once (every machine of a deploy starting
``bulletin serve``): each upgrade holds a lock for its whole run, on the connection that
Alembic migrates with, and reads the current revision only once it holds it, so the first
one migrates and the others find the schema at head and do nothing. On PostgreSQL the
lock is a session-level advisory lock on a fixed key (released by the server if the
process dies); on SQLite it is the database's own write lock, taken by ``BEGIN IMMEDIATE``
with the whole upgrade as one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from alembic import command

from .db import CONNECT_TIMEOUT_SECONDS, secure_sqlite_file

T = TypeVar("T")
log = logging.getLogger("bulletin.migrate")

# alembic/ lives beside the server package in the source tree; server/migrations links to
# it, so that a built wheel carries the migrations inside the package.
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# The PostgreSQL advisory lock every Bulletin upgrade takes: b"Bulletin" as a 64-bit
# integer, so that it is unlikely to collide with another application's key.
LOCK_KEY = int.from_bytes(b"Bulletin", "big")
# How long an upgrade on SQLite waits for another one (or any writer) to finish.
SQLITE_LOCK_WAIT_SECONDS = 600.0


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this database, independent of the working directory."""
    if not (SCRIPT_LOCATION / "env.py").exists():
        raise FileNotFoundError(
            f"migration scripts not found at {SCRIPT_LOCATION}; "
            "install Bulletin from its source tree (pip install -e .)")
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``, under the migration lock.

    Safe to run from several processes at once; callable from inside an event loop (the
    migration then runs on a worker thread).
    """
    config = alembic_config(database_url)
    secure_sqlite_file(database_url)
    _off_the_loop(lambda: _upgrade(config, database_url, revision))


def current_head() -> str | None:
    """The newest revision in the scripts."""
    return _scripts().get_current_head()


@dataclass(frozen=True)
class Schema:
    """Where a database's schema stands against this version's migration scripts."""

    current: str | None  # None: no schema yet (an empty database)
    head: str
    known: bool  # whether the scripts know ``current`` (a newer Bulletin's is unknown)

    @property
    def at_head(self) -> bool:
        """Whether the database needs no migration."""
        return self.current == self.head


def schema(database_url: str) -> Schema:
    """The database's revision and the scripts' head; raises when it cannot be read.

    A SQLite file that does not exist yet is an empty database (and is not created).
    """
    scripts = _scripts()
    head = scripts.get_current_head()
    assert head is not None, "the migration scripts have no head"
    current = None if _missing_sqlite_file(database_url) else _off_the_loop(
        lambda: _current_revision(database_url))
    known = current is None or current in {s.revision for s in scripts.walk_revisions()}
    return Schema(current=current, head=head, known=known)


# --- running the migrations -------------------------------------------------------------

async def _upgrade(config: Config, url: str, revision: str) -> None:
    engine = _engine(url, locking=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_locked, config, revision)
    finally:
        await engine.dispose()


def _upgrade_locked(connection: Connection, config: Config, revision: str) -> None:
    lock = _advisory_lock if connection.dialect.name == "postgresql" else _write_lock
    with lock(connection):
        # env.py migrates on this connection: Alembic reads the current revision now,
        # with the lock held.
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def _advisory_lock(connection: Connection) -> Iterator[None]:
    """PostgreSQL: hold the session's advisory lock while Alembic runs its transactions."""
    key = {"key": LOCK_KEY}
    if not connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        log.info("another process is migrating the database; waiting for it to finish")
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), key)
    connection.commit()  # the lock outlives this transaction: it is the session's
    try:
        yield
    except BaseException:
        # The connection is closed next (NullPool), which releases the lock too.
        connection.rollback()
        raise
    connection.commit()
    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)
    connection.commit()


@contextmanager
def _write_lock(connection: Connection) -> Iterator[None]:
    """SQLite: the upgrade is one transaction begun IMMEDIATE (see ``_engine``), which
    waits for any other writer and keeps every other writer out until it commits."""
    with connection.begin():
        yield


def _engine(url: str, *, locking: bool = False) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return create_async_engine(url, poolclass=pool.NullPool,
                                   connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})
    engine = create_async_engine(url, poolclass=pool.NullPool,
                                 connect_args={"timeout": SQLITE_LOCK_WAIT_SECONDS})
    if locking:
        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy, not the sqlite3 module, begins transactions: as below.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


# --- reading the revision ---------------------------------------------------------------

async def _current_revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()


def _missing_sqlite_file(url: str) -> bool:
    if not url.startswith("sqlite"):
        return False
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return not os.path.exists(database)


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def _off_the_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on an event loop of its own: this thread's, or a worker thread's
    when this one runs a loop already (a test, an app)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(lambda: asyncio.run(main())).result()
