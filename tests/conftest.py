"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, the app, API clients."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from bulletin.settings import Settings
from bulletin.store import accounts, migrate
from bulletin.store.db import Database
from bulletin.web.app import create_app

POSTGRES_URL = os.environ.get(
    "BULLETIN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BULLETIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Channels of this test session: other runs may share the same Redis at the same time.
REDIS_SESSION = f"bulletin-test-{uuid.uuid4().hex[:12]}"
REQUIRE_SERVICES = os.environ.get("BULLETIN_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
T = TypeVar("T")
def _tables() -> tuple[str, ...]:
    """Every table of the models, so that a new one is emptied between tests too."""
    from sqlmodel import SQLModel

    import bulletin.store.models  # noqa: F401 (the tables)

    return tuple(t.name for t in reversed(SQLModel.metadata.sorted_tables))


TABLES = _tables()


def service_unavailable(reason: str) -> None:
    """Skip the test, or fail it when the run requires every service (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (BULLETIN_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(reason)  # service not available here; CI sets BULLETIN_REQUIRE_SERVICES=1


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop in a worker thread (safe anywhere)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def bulletin_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this checkout, once per session (pip fetches the build backend
    from the index)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "--wheel-dir", str(out), str(Path(__file__).resolve().parents[1])],
                   check=True, capture_output=True, text=True, timeout=300)
    (found,) = out.glob("bulletin-*.whl")
    return found


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A private PostgreSQL database for this test session, migrated once, dropped after."""
    import asyncpg

    name = f"bulletin_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        run_async(admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_unavailable(f"PostgreSQL not available at {POSTGRES_URL}: {exc}")
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    run_async(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, then the PostgreSQL server."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "bulletin.db"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_database")
    _truncate(url)
    yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied: for tests that need PostgreSQL itself
    (several processes, a cut network path)."""
    _truncate(postgres_database)
    return postgres_database


def _truncate(url: str) -> None:
    import asyncpg

    async def truncate() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    run_async(truncate())


_redis_tests = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The shared Redis server's URL; skips (or fails in CI) when it is not running."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis not available at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The shared Redis with a channel prefix of this test's own."""
    return with_prefix(redis_server_url, f"{REDIS_SESSION}-{next(_redis_tests)}:")


def with_prefix(url: str, prefix: str) -> str:
    """``url`` with Bulletin's channel prefix parameter."""
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def free_tcp_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of the test's own on a free port: it can be stopped and restarted
    without disturbing anyone else."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_tcp_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (again) on the same port and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            service_unavailable("redis-server is not installed")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server: every client connection drops."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A running redis-server of this test's own."""
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for a test app: generous rate limits, a fixed secret, and no card fetching
    (a test never calls a real provider; tests/web/test_oembed.py points the settings at
    a fake one).

    A live test server keeps idle HTTP connections for 30 s, longer than httpx keeps
    them (5 s): with equal times a client may send on a connection the server is just
    closing and read nothing back (seen as an httpx.ReadError in CI). Tests of the
    keep-alive limit set it themselves."""
    return Settings(database_url=database_url, secret_key=TEST_SECRET,
                    secret_key_file=str(tmp_path / "secret"), write_rate=1000.0,
                    write_burst=1000, media_url=(tmp_path / "media").as_uri(),
                    oembed_enabled=False, keepalive_seconds=30.0)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on the test database, for arranging and checking state directly."""
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The app with its lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client of the app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class EditorLogin:
    """An editor and an API token of theirs."""

    username: str
    token: str
    editor_id: int

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this editor."""
        return {"Authorization": f"Bearer {self.token}"}


async def make_editor(db: Database, username: str, role: str = "editor") -> EditorLogin:
    """Create an editor with a token: of the admin scope for an admin, else write."""
    async with db.write() as session:
        editor = await accounts.create_editor(
            session, username=username, display_name=username.title(),
            password="correct horse battery", role=role)
        _token, plain = await accounts.create_token(
            session, editor=editor, name="tests", scope="admin" if role == "admin" else "write")
    assert editor.id is not None
    return EditorLogin(username, plain, editor.id)


@pytest.fixture
async def editor(app: Starlette, db: Database) -> EditorLogin:
    """An editor named alice with a token."""
    return await make_editor(db, "alice")


@pytest.fixture
async def editor_client(
    app: Starlette, editor: EditorLogin
) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends alice's token."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=editor.headers) as c:
        yield c
