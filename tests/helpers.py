"""Helpers for tests: table snapshots, quick API calls, and logging set up as a process
sets it up."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import sqlalchemy as sa

from bulletin import logsetup
from bulletin.settings import Settings
from bulletin.store.db import Database

TABLES = ("editors", "api_tokens", "streams", "posts", "post_revisions", "events",
          "idempotency_keys", "people", "drafts")


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a refused request changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.engine.connect() as conn:
        for table in TABLES:
            # last_used_at is advisory bookkeeping that any authenticated call may touch.
            columns = ("id, editor_id, name, token_hash, prefix, created_at, revoked_at"
                       if table == "api_tokens" else "*")
            rows = await conn.execute(sa.text(f"SELECT {columns} FROM {table} ORDER BY id"))
            out[table] = [tuple(r) for r in rows]
    return out


async def new_stream(client: httpx.AsyncClient, slug: str = "election", *,
                     status: str = "live", **extra: Any) -> dict[str, Any]:
    """Create a stream through the API and return its JSON."""
    response = await client.post("/api/streams",
                                 json={"slug": slug, "title": f"Story {slug}",
                                       "status": status, **extra})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def new_post(client: httpx.AsyncClient, slug: str, body: str, **extra: Any
                   ) -> dict[str, Any]:
    """Publish a post through the API and return its JSON."""
    response = await client.post(f"/api/streams/{slug}/posts", json={"body": body, **extra})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def events(client: httpx.AsyncClient, slug: str, since: int = 0) -> list[dict[str, Any]]:
    """The stream's event log after ``since``."""
    response = await client.get(f"/api/streams/{slug}/events", params={"since": since})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["events"]
    return result


@contextmanager
def process_logging(settings: Settings, *, worker: int = 0,
                    stream: io.StringIO | None = None) -> Iterator[io.StringIO]:
    """Logging as logsetup.configure sets it up in a process, into a string; afterwards
    its handler is gone and the loggers' levels are as they were."""
    names = ("", *logsetup.OWN_LOGGERS, "uvicorn.access", "asgi_correlation_id")
    levels = {name: logging.getLogger(name).level for name in names}
    access = logging.getLogger("uvicorn.access")
    access_handlers, access_propagate = list(access.handlers), access.propagate
    out = io.StringIO() if stream is None else stream
    handler = logsetup.configure(settings, worker=worker, stream=out)
    try:
        yield out
    finally:
        root = logging.getLogger()
        for old in [h for h in root.handlers if h.get_name() == handler.get_name()]:
            root.removeHandler(old)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        access.handlers[:] = access_handlers
        access.propagate = access_propagate
