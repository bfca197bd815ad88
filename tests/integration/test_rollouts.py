"""Rollouts with real processes: concurrent `bulletin db upgrade` on a fresh PostgreSQL
database and SQLite file, `db current` and `db check` for deploy scripts, `serve
--no-migrate` on a database that is not at head, and `serve --workers`: a rolling restart
on SIGHUP under live readers, SIGTERM in the middle of one, and a worker that stops
answering its supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from alembic import command
from bulletin.store import migrate
from tests.conftest import POSTGRES_URL, EditorLogin, _asyncpg_dsn, run_async, service_unavailable
from tests.test_cli import BULLETIN, _stop, _wait_ready, free_port, run, start_server

from .readers import Reader, WsReader, exactly_once_in_order
from .test_processes import Started, _workers, create_stream, stream_seq, ws

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


def test_db_check_refuses_a_revision_from_a_newer_version(tmp_path: Path) -> None:
    """A database migrated by a newer Bulletin (a revision these scripts do not know) is
    not at head: `db current` says so, `db check` exits 1."""
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "b.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    env = _env(url)
    head = migrate.current_head()
    current, check = run(["db", "current"], env), run(["db", "check"], env)
    assert (current.returncode, current.stdout) == (
        0, f"9999 (unknown to this version of Bulletin, whose head is {head})\n")
    assert check.returncode == 1
    assert check.stderr == ("bulletin: error: the database is at 9999, a revision this "
                            f"version of Bulletin does not know (its head is {head}): a "
                            "newer version migrated it\n")


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


# --- rolling restarts and silent workers (bulletin serve --workers) ------------------------

class Poller:
    """GET /readyz on a new connection again and again, counting how each one went."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: dict[int, int] = {}
        self.refused = 0
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=5) as client:
            while not self._stop.is_set():
                try:
                    status = (await client.get("/readyz")).status_code
                    self.answers[status] = self.answers.get(status, 0) + 1
                except httpx.ConnectError:
                    self.refused += 1
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                await asyncio.sleep(0.02)


async def _posting(base: str, editor: EditorLogin, stop: asyncio.Event) -> None:
    """Post to the stream until told to stop (a post cut off by a worker stopping is left
    to the log: readers are checked against the stream's head, not against the posts)."""
    async with httpx.AsyncClient(base_url=base, headers=editor.headers, timeout=10) as client:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                await client.post("/api/streams/s/posts", json={"body": f"rollout {i}"})
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        await asyncio.sleep(0.1)


async def test_sighup_replaces_every_worker_one_at_a_time_keeping_the_port_and_every_event(
    serve: Callable[..., Started], pg_editor: EditorLogin, readers: Callable[..., Reader],
    process_env: dict[str, str],
) -> None:
    """SIGHUP to `serve --workers 2` while posts flow: every worker is replaced, /readyz
    never refuses a connection, and WebSocket readers moved by going-away resume with
    `since` and end with every event exactly once, in order."""
    process_env["BULLETIN_LOG_LEVEL"] = "info"  # the supervisor's lines are read
    supervisor, base = serve("--workers", "2")
    before = _workers(supervisor)
    assert len(before) == 2
    await create_stream(base, pg_editor)
    group = [readers(WsReader, [ws(base)]) for _ in range(6)]
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in group)), 10)
    poller = Poller(base)
    poller.start()
    stop = asyncio.Event()
    posting = asyncio.create_task(_posting(base, pg_editor, stop))
    await group[0].wait_for(5)

    began = time.monotonic()
    supervisor.send_signal(signal.SIGHUP)
    await _until(lambda: (lambda now: len(now) == 2 and not now & before)(_workers(supervisor)),
                 90, "both workers replaced")
    rolled = time.monotonic() - began
    head_at_roll = await stream_seq(base)
    for reader in group:
        await reader.wait_for(head_at_roll + 5)
    stop.set()
    await posting
    await poller.stop()

    head = await stream_seq(base)
    for reader in group:
        await reader.wait_for(head)
    await asyncio.sleep(0.3)
    for reader in group:
        exactly_once_in_order(reader, head)
    assert all(reader.connections >= 2 for reader in group)  # every worker they were on went
    assert poller.refused == 0, poller.answers
    assert set(poller.answers) == {200} and poller.answers[200] > 10, poller.answers
    output = await asyncio.to_thread(_stop, supervisor)
    assert supervisor.returncode == 0, output
    assert "rolling restart of 2 workers done" in output
    print(f"rolling restart of 2 workers: {rolled:.1f} s; /readyz {poller.answers}, "
          f"failures {poller.failures}")


async def test_sighups_during_a_rolling_restart_make_one_more_and_sigterm_stops_it(
    serve: Callable[..., Started], process_env: dict[str, str],
) -> None:
    """Two SIGHUPs during a rolling restart make one more rolling restart after it, not
    two; SIGTERM in the middle of that one stops the old workers and the new one, and the
    supervisor exits 0."""
    process_env["BULLETIN_LOG_LEVEL"] = "info"  # the supervisor's lines are read
    supervisor, _base = serve("--workers", "2")
    seen = _workers(supervisor)
    supervisor.send_signal(signal.SIGHUP)

    def new_workers() -> int:
        seen.update(_workers(supervisor))
        return len(seen) - 2

    await _until(lambda: new_workers() >= 1, 30, "the first new worker started")
    supervisor.send_signal(signal.SIGHUP)
    supervisor.send_signal(signal.SIGHUP)
    # The first rolling restart starts two new workers; the second, a third.
    await _until(lambda: new_workers() >= 3, 90, "the second rolling restart began")
    output = await asyncio.to_thread(_stop, supervisor)
    assert supervisor.returncode == 0, output
    assert output.count("SIGHUP: restarting the 2 workers one at a time") == 2, output
    assert output.count("rolling restart of 2 workers done") == 1, output
    assert not [pid for pid in seen if _exists(pid)]


class _Output:
    """What a running process has written to its stdout pipe so far, read without
    blocking; ``done`` gives the pipe back to ``_stop``, which reads the rest."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.chunks: list[bytes] = []

    def read(self) -> str:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.chunks.append(chunk)
        return self.text

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def done(self) -> None:
        self.read()
        os.set_blocking(self.fd, True)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_worker_whose_event_loop_stops_is_replaced(
    serve: Callable[..., Started], process_env: dict[str, str],
) -> None:
    """A worker stopped with SIGSTOP (its loop beats no more) is killed and replaced once
    BULLETIN_WORKER_TIMEOUT_SECONDS has passed; the port keeps answering."""
    process_env["BULLETIN_WORKER_TIMEOUT_SECONDS"] = "3"  # the dict `serve` starts with
    process_env["BULLETIN_LOG_LEVEL"] = "info"  # the supervisor's "ready" lines are read
    supervisor, base = serve("--workers", "2")
    # /readyz answers once one worker serves; a worker that never beat has the longer
    # startup allowance, so wait until both have said they are ready.
    early = _Output(supervisor)
    await _until(lambda: early.read().count(" ready after ") >= 2, 60, "both workers ready")
    early.done()
    victim = min(_workers(supervisor))
    os.kill(victim, signal.SIGSTOP)
    try:
        await _until(lambda: (lambda now: len(now) == 2 and victim not in now)(
            _workers(supervisor)), 30, f"worker {victim} replaced")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        assert (await client.get("/readyz")).status_code == 200
    output = early.text + await asyncio.to_thread(_stop, supervisor)
    assert supervisor.returncode == 0, output
    assert f"worker {victim} missed its heartbeats for " in output
    assert "(limit 3 s); replacing it" in output
