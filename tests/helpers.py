"""Helpers for tests: table snapshots and quick API calls."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

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
