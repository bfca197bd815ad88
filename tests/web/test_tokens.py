"""The admin API for tokens (GET /api/tokens, DELETE /api/tokens/{id}) through the ASGI app,
on SQLite and PostgreSQL: admins only, no hashes, revocation that sticks and is announced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from bulletin.live.driver import HubDriver
from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor
from tests.helpers import snapshot

TOKEN_FIELDS = {"id", "editor_id", "editor", "name", "prefix", "scope", "streams",
                "expires_at", "expired", "created_at", "last_used_at", "revoked_at", "revoked"}


@pytest.fixture
async def root(app: Starlette, db: Database, editor: EditorLogin) -> EditorLogin:
    """An admin named root with a token (made after alice and hers)."""
    return await make_editor(db, "root", role="admin")


@pytest.fixture
async def admin_client(app: Starlette, root: EditorLogin) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends root's token."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=root.headers) as c:
        yield c


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch, db: Database) -> list[list[Any]]:
    """Each call of HubDriver.credentials_changed, with the revoked_at column as the database
    showed it to another connection at that moment (so: what had committed)."""
    calls: list[list[Any]] = []

    async def credentials_changed(self: HubDriver) -> None:
        async with db.engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT revoked_at FROM api_tokens ORDER BY id"))
            calls.append([r[0] is not None for r in rows])

    monkeypatch.setattr(HubDriver, "credentials_changed", credentials_changed)
    return calls


async def _token_id(admin_client: httpx.AsyncClient, username: str) -> int:
    tokens = (await admin_client.get("/api/tokens", params={"editor": username})).json()
    token_id: int = tokens["tokens"][0]["id"]
    return token_id


async def test_admins_list_every_token_newest_first_without_hashes(
    admin_client: httpx.AsyncClient, editor: EditorLogin, root: EditorLogin
) -> None:
    """GET /api/tokens lists every editor's tokens, newest first, and never a hash."""
    response = await admin_client.get("/api/tokens")
    assert response.status_code == 200
    tokens = response.json()["tokens"]
    assert [(t["editor"], t["editor_id"]) for t in tokens] == [
        ("root", root.editor_id), ("alice", editor.editor_id)]
    for token in tokens:
        assert set(token) == TOKEN_FIELDS
        assert token["name"] == "tests" and token["revoked"] is False
        assert token["revoked_at"] is None and token["created_at"].endswith("Z")
        assert token["prefix"].startswith("blt_")
    assert tokens[1]["prefix"] == editor.token[:len(tokens[1]["prefix"])]
    assert "hash" not in response.text and editor.token not in response.text
    assert root.token not in response.text


async def test_the_list_filters_by_editor(
    admin_client: httpx.AsyncClient, editor: EditorLogin, root: EditorLogin
) -> None:
    """?editor=<username> lists that editor's tokens only; an unknown editor is a 404."""
    mine = (await admin_client.get("/api/tokens", params={"editor": "alice"})).json()
    assert [t["editor"] for t in mine["tokens"]] == ["alice"]
    everyone = await admin_client.get("/api/tokens", params={"editor": ""})
    assert len(everyone.json()["tokens"]) == 2
    for name in ("nobody", "Not A Name", "x" * 300):
        missing = await admin_client.get("/api/tokens", params={"editor": name})
        assert missing.status_code == 404, name
        assert missing.json()["error"]["code"] == "editor_not_found"


async def test_revoking_stops_the_token_and_twice_keeps_the_first_time(
    admin_client: httpx.AsyncClient, editor_client: httpx.AsyncClient, editor: EditorLogin
) -> None:
    """DELETE /api/tokens/{id} answers the revoked token; the token is a 401 from then on,
    and revoking again answers the same revocation time."""
    token_id = await _token_id(admin_client, "alice")
    assert (await editor_client.get("/api/me")).status_code == 200
    first = await admin_client.delete(f"/api/tokens/{token_id}")
    assert first.status_code == 200
    body = first.json()
    assert set(body) == TOKEN_FIELDS and "hash" not in first.text
    assert (body["id"], body["editor"], body["revoked"]) == (token_id, "alice", True)
    assert body["revoked_at"] is not None
    assert (await editor_client.get("/api/me")).status_code == 401
    again = await admin_client.delete(f"/api/tokens/{token_id}")
    assert again.status_code == 200
    assert again.json()["revoked_at"] == body["revoked_at"]
    listed = (await admin_client.get("/api/tokens", params={"editor": "alice"})).json()
    assert listed["tokens"][0]["revoked_at"] == body["revoked_at"]


async def test_a_revocation_is_announced_once_after_it_commits(
    admin_client: httpx.AsyncClient, editor: EditorLogin, root: EditorLogin,
    announced: list[list[Any]],
) -> None:
    """Open connections are told once the revocation has committed; a repeat tells no one."""
    token_id = await _token_id(admin_client, "alice")
    assert (await admin_client.delete(f"/api/tokens/{token_id}")).status_code == 200
    assert announced == [[True, False]]  # alice's token (the first) is revoked, root's not
    assert (await admin_client.delete(f"/api/tokens/{token_id}")).status_code == 200
    assert len(announced) == 1


@pytest.mark.parametrize("raw", ["999", "0", "abc", "²", "٣", "1²", "99999999999", "-1"])
async def test_unknown_or_malformed_token_ids_are_404(
    admin_client: httpx.AsyncClient, editor: EditorLogin, db: Database, raw: str
) -> None:
    """A token id that names no token, or is not ASCII digits, is a JSON 404 that changes
    nothing (a Unicode digit never reaches int())."""
    before = await snapshot(db)
    response = await admin_client.delete(f"/api/tokens/{raw}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "token_not_found"
    assert await snapshot(db) == before


async def test_other_editors_are_forbidden_and_anonymous_callers_must_sign_in(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient, root: EditorLogin,
    db: Database,
) -> None:
    """An editor who is not an admin gets a 403 forbidden, an anonymous caller a 401, both
    in the JSON error shape; neither revokes anything."""
    before = await snapshot(db)
    for response in (await editor_client.get("/api/tokens"),
                     await editor_client.delete("/api/tokens/1")):
        assert response.status_code == 403
        assert response.json() == {"error": {
            "code": "forbidden", "message": "only admins may manage API tokens",
            "details": None}}
    for response in (await client.get("/api/tokens"), await client.delete("/api/tokens/1")):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_required"
    assert await snapshot(db) == before


async def test_a_disabled_admins_token_is_refused(
    admin_client: httpx.AsyncClient, root: EditorLogin, db: Database
) -> None:
    """An admin who has been disabled cannot list or revoke tokens (403 editor_disabled)."""
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE editors SET disabled = :t WHERE username = 'root'"),
                           {"t": True})
    response = await admin_client.get("/api/tokens")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "editor_disabled"
