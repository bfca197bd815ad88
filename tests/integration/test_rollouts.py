"""Rollouts with real processes: concurrent `bulletin db upgrade` on a fresh PostgreSQL
database and SQLite file, `db current` and `db check` for deploy scripts, and `serve
--no-migrate` on a database that is not at head."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from alembic import command
from bulletin.store import migrate
from tests.conftest import POSTGRES_URL, _asyncpg_dsn, run_async, service_unavailable
from tests.test_cli import BULLETIN, _stop, _wait_ready, free_port, run, start_server

SECRET = "rollouts-test-secret-0123456789-abcdefghijk"


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    name = f"bulletin_fresh_{uuid.uuid4().hex[:12]}"
    try:
        run_async(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_unavailable(f"PostgreSQL not available at {POSTGRES_URL}: {exc}")
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    run_async(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["postgres", "sqlite"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: PostgreSQL, then a SQLite file that does not exist yet."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "BULLETIN_DATABASE_URL": url, "BULLETIN_SECRET_KEY": SECRET}


def _versions(url: str) -> list[str]:
    async def read() -> list[str]:
        import sqlalchemy as sa
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                return [row[0] for row in rows]
        finally:
            await engine.dispose()

    return run_async(read())


def test_three_concurrent_upgrades_all_succeed_and_leave_one_head(
    fresh_database: str,
) -> None:
    """Three `bulletin db upgrade` started at once on an empty database all exit 0; the
    schema is migrated once and alembic_version holds one row, at head."""
    env = _env(fresh_database)
    upgrades = [subprocess.Popen([*BULLETIN, "db", "upgrade"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in upgrades]
    assert [process.returncode for process in upgrades] == [0, 0, 0], outputs
    assert all("database is up to date" in output for output in outputs)
    assert _versions(fresh_database) == [migrate.current_head()]
    assert run(["db", "check"], env).returncode == 0


def test_db_current_and_check_at_head_behind_and_empty(fresh_database: str) -> None:
    """`db current` prints the revision and whether it is the head (exit 0 when it can
    read it); `db check` exits 0 only at head, and 1 with what to do when the database is
    empty or behind."""
    env = _env(fresh_database)
    head = migrate.current_head()
    empty_current, empty_check = run(["db", "current"], env), run(["db", "check"], env)
    assert (empty_current.returncode, empty_current.stdout) == (
        0, f"none (empty database; head is {head})\n")
    assert empty_check.returncode == 1
    assert empty_check.stderr == (f"bulletin: error: the database is empty: no schema yet, "
                                  f"head is {head}; run bulletin db upgrade\n")
    if fresh_database.startswith("sqlite"):
        assert not Path(make_url(fresh_database).database or "").exists()  # not created

    migrate.upgrade(fresh_database)
    current, check = run(["db", "current"], env), run(["db", "check"], env)
    assert (current.returncode, current.stdout) == (0, f"{head} (head)\n")
    assert (check.returncode, check.stdout) == (0, f"at head: {head}\n")

    command.downgrade(migrate.alembic_config(fresh_database), "-1")
    previous = _versions(fresh_database)[0]
    assert previous != head
    current, check = run(["db", "current"], env), run(["db", "check"], env)
    assert (current.returncode, current.stdout) == (0, f"{previous} (behind: head is {head})\n")
    assert check.returncode == 1
    assert check.stderr == (f"bulletin: error: the database is behind: at {previous}, head "
                            f"is {head}; run bulletin db upgrade\n")


def test_db_check_tells_an_unreachable_database_apart() -> None:
    """`db check` and `db current` exit 3, naming the database, when it cannot be reached."""
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        env = _env(f"postgresql+asyncpg://bulletin:secret@127.0.0.1:{port}/bulletin")
        for args in (["db", "check"], ["db", "current"]):
            result = run(args, env)
            assert result.returncode == 3, result.stderr
            assert result.stderr.startswith(
                f"bulletin: error: cannot use the database postgresql+asyncpg://bulletin:***@"
                f"127.0.0.1:{port}/bulletin: ")
            assert "secret" not in result.stderr


def test_serve_no_migrate_refuses_a_database_behind_and_serves_one_at_head(
    tmp_path: Path,
) -> None:
    """`serve --no-migrate` on a database that is not at head exits 1 without migrating
    it; on one at head it starts."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    env = _env(url)
    migrate.upgrade(url, "0010")
    refused = run(["serve", "--no-migrate", "--port", str(free_port())], env)
    assert refused.returncode == 1
    assert refused.stderr == ("bulletin: error: the database is behind: at 0010, head is "
                              f"{migrate.current_head()}; run bulletin db upgrade\n")
    assert _versions(url) == ["0010"]

    migrate.upgrade(url)
    server, base = start_server(env, "--no-migrate")
    try:
        _wait_ready(base, server)
    finally:
        _stop(server)
