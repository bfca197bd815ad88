"""Token scopes, stream-bound and expiring tokens, and the contributor role, through the
ASGI app on SQLite and PostgreSQL: every refusal is its own status and code, and changes
nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from bulletin.core.access import SCOPES
from bulletin.settings import TOKEN_SCOPES
from bulletin.store import accounts
from bulletin.store.credentials import Credential, still_valid
from bulletin.store.db import Database
from bulletin.store.models import ApiToken, utcnow
from tests.conftest import EditorLogin, make_editor
from tests.helpers import new_post, new_stream, snapshot


async def _token(db: Database, username: str, *, scope: str = "write",
                 streams: Sequence[str] | None = None,
                 expires_in: timedelta | None = None) -> str:
    async with db.write() as session:
        editor = await accounts.get_editor(session, username=username)
        _row, plain = await accounts.create_token(session, editor=editor, name="scoped",
                                                  scope=scope, streams=streams,
                                                  expires_in=expires_in)
    return plain


@asynccontextmanager
async def _client(app: Starlette, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        assert (await c.get("/api/me")).status_code == 200  # last use recorded before any
        yield c                                             # snapshot is taken


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


@pytest.fixture
async def stories(editor_client: httpx.AsyncClient) -> dict[str, Any]:
    """Two live stories, a draft and one post of alice's in each live one."""
    await new_stream(editor_client, "vote")
    await new_stream(editor_client, "match")
    await new_stream(editor_client, "secret", status="draft")
    return {"vote": await new_post(editor_client, "vote", "Polls open"),
            "match": await new_post(editor_client, "match", "Kick-off")}


def test_the_settings_know_the_scopes() -> None:
    """The settings' copy of the scopes (they may not import the core) is core/access.py's."""
    assert TOKEN_SCOPES == SCOPES


async def test_a_read_token_reads_drafts_and_revisions_but_every_write_is_403(
    app: Starlette, db: Database, editor: EditorLogin, stories: dict[str, Any]
) -> None:
    """A read token sees drafts and revisions as its editor does; every write (streams,
    posts, edits, pins, deletes, photos, token admin) is 403 insufficient_scope, and the
    database is as before."""
    post_id = stories["vote"]["id"]
    async with _client(app, await _token(db, "alice", scope="read")) as reader:
        slugs = {s["slug"] for s in (await reader.get("/api/streams")).json()["streams"]}
        assert "secret" in slugs
        assert (await reader.get(f"/api/posts/{post_id}/revisions")).status_code == 200
        me = (await reader.get("/api/me")).json()
        assert me["token"] | {"id": None, "prefix": None} == {
            "id": None, "prefix": None, "name": "scoped", "scope": "read", "streams": None,
            "expires_at": None}
        before = await snapshot(db)
        for response in [
            await reader.post("/api/streams", json={"slug": "new", "title": "New"}),
            await reader.patch("/api/streams/vote", json={"title": "Changed"}),
            await reader.post("/api/streams/vote/posts", json={"body": "Nope"}),
            await reader.patch(f"/api/posts/{post_id}", json={"body": "Nope"}),
            await reader.patch(f"/api/posts/{post_id}", json={"pinned": True}),
            await reader.delete(f"/api/posts/{post_id}"),
            await reader.post("/api/media", files={"file": ("a.png", b"x", "image/png")}),
            await reader.delete("/api/media/1"),
        ]:
            _refused(response, 403, "insufficient_scope")
            assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
        assert await snapshot(db) == before


async def test_a_stream_bound_token_writes_only_to_its_streams(
    app: Starlette, db: Database, editor: EditorLogin, stories: dict[str, Any]
) -> None:
    """A token bound to "vote" posts, edits, pins and changes the stream there; elsewhere,
    and for creating a stream, it is 403 stream_not_allowed and nothing changes."""
    async with _client(app, await _token(db, "alice", streams=["vote"])) as bound:
        assert (await bound.get("/api/me")).json()["token"]["streams"] == ["vote"]
        before = await snapshot(db)
        match_post = stories["match"]["id"]
        for response in [
            await bound.post("/api/streams/match/posts", json={"body": "Elsewhere"}),
            await bound.patch(f"/api/posts/{match_post}", json={"body": "Elsewhere"}),
            await bound.patch(f"/api/posts/{match_post}", json={"pinned": True}),
            await bound.delete(f"/api/posts/{match_post}"),
            await bound.patch("/api/streams/match", json={"title": "Elsewhere"}),
            await bound.post("/api/streams", json={"slug": "new", "title": "New"}),
        ]:
            _refused(response, 403, "stream_not_allowed")
            assert response.json()["error"]["details"]["streams"] == ["vote"]
        assert await snapshot(db) == before
        assert (await bound.get("/api/streams/match/posts")).status_code == 200  # reads
        made = await bound.post("/api/streams/vote/posts", json={"body": "Here"})
        assert made.status_code == 201
        assert (await bound.patch(f"/api/posts/{made.json()['id']}",
                                  json={"body": "Here, edited", "pinned": True})).status_code == 200
        assert (await bound.patch("/api/streams/vote", json={"title": "Vote!"})).status_code == 200
        assert (await bound.delete(f"/api/posts/{stories['vote']['id']}")).status_code == 200


async def test_an_expired_token_is_401_token_expired_and_its_connections_end(
    app: Starlette, client: httpx.AsyncClient, db: Database, editor: EditorLogin
) -> None:
    """Past its expiry a token is 401 token_expired (not invalid_token, which unknown and
    revoked tokens get), on reads too; its use is not recorded, and still_valid drops it."""
    plain = await _token(db, "alice", expires_in=timedelta(minutes=30))
    async with db.write() as session:
        row = (await session.exec(sa.select(ApiToken).where(
            ApiToken.token_hash == accounts.auth.token_hash(plain)))).scalars().one()
        credential = Credential(editor.editor_id, token_id=row.id)
        assert await still_valid(session, [credential], settings=app.state.settings) == {
            credential}
        row.expires_at = utcnow() - timedelta(seconds=1)
    auth = {"Authorization": f"Bearer {plain}"}
    for response in [await client.get("/api/me", headers=auth),
                     await client.get("/api/streams", headers=auth),
                     await client.post("/api/streams", headers=auth,
                                       json={"slug": "x", "title": "X"})]:
        _refused(response, 401, "token_expired")
        assert response.json()["error"]["details"]["expired_at"].endswith("Z")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    _refused(await client.get("/api/me", headers={"Authorization": "Bearer blt_unknown"}),
             401, "invalid_token")
    async with db.read() as session:
        assert await still_valid(session, [credential], settings=app.state.settings) == set()
        stored = await session.get(ApiToken, row.id)
        assert stored is not None and stored.last_used_at is None


async def test_last_use_is_recorded(app: Starlette, db: Database, editor: EditorLogin) -> None:
    """A token's first request records its last use."""
    plain = await _token(db, "alice", scope="read")
    async with db.read() as session:
        rows = await accounts.list_all_tokens(session)
    assert rows[0][0].last_used_at is None
    async with _client(app, plain):
        pass
    async with db.read() as session:
        used = (await accounts.list_all_tokens(session))[0][0].last_used_at
    assert used is not None and utcnow() - used < timedelta(seconds=30)


async def test_the_token_api_needs_the_admin_scope_and_never_exceeds_the_role(
    app: Starlette, db: Database, editor: EditorLogin
) -> None:
    """An admin's write token (as every token from before scopes) is 403 insufficient_scope
    on /api/tokens, their admin token is let in, a stream-bound admin token is not; an
    editor cannot be given an admin token at all."""
    await make_editor(db, "root", role="admin")
    async with _client(app, await _token(db, "root", scope="write")) as write:
        _refused(await write.get("/api/tokens"), 403, "insufficient_scope")
        _refused(await write.delete("/api/tokens/1"), 403, "insufficient_scope")
    async with _client(app, await _token(db, "root", scope="admin")) as admin:
        assert (await admin.get("/api/tokens")).status_code == 200
        await new_stream(admin, "vote")
    async with _client(app, await _token(db, "root", scope="admin", streams=["vote"])) as bound:
        _refused(await bound.get("/api/tokens"), 403, "stream_not_allowed")
    with pytest.raises(accounts.ApiError) as refused:
        await _token(db, "alice", scope="admin")
    assert refused.value.code == "scope_exceeds_role"


@pytest.mark.parametrize("bad, code", [("root", "invalid_scope"), ("", "invalid_scope")])
async def test_a_bad_scope_makes_no_token(db: Database, editor: EditorLogin, bad: str,
                                          code: str) -> None:
    """An unknown scope is a 422 and no token is made."""
    before = await snapshot(db)
    with pytest.raises(accounts.ApiError) as refused:
        await _token(db, "alice", scope=bad)
    assert refused.value.status == 422 and refused.value.code == code
    assert await snapshot(db) == before


async def test_a_contributor_writes_and_edits_own_posts_only(
    app: Starlette, db: Database, editor: EditorLogin, stories: dict[str, Any]
) -> None:
    """A contributor (even with a write token) submits and edits their own post; pinning
    (their own too, or a new post as it is made), deleting another's post or their own
    once published, editing alice's post, creating and changing streams and taking photos
    down are each a 403, and change nothing."""
    cora = await make_editor(db, "cora", role="contributor")
    async with _client(app, cora.token) as contributor:
        assert (await contributor.get("/api/me")).json()["role"] == "contributor"
        mine = await new_post(contributor, "vote", "From the field")
        assert mine["author"]["name"] == "Cora"
        edited = await contributor.patch(f"/api/posts/{mine['id']}",
                                         json={"body": "From the field, corrected"})
        assert edited.status_code == 200 and edited.json()["revision"] == 2
        async with _client(app, editor.token) as alice:
            approved = await alice.post(f"/api/posts/{mine['id']}/approve")
            assert approved.status_code == 200 and approved.json()["status"] == "published"
        revisions = await contributor.get(f"/api/posts/{stories['vote']['id']}/revisions")
        assert revisions.status_code == 200
        before = await snapshot(db)
        alices = stories["vote"]["id"]
        for response, action in [
            (await contributor.patch(f"/api/posts/{alices}", json={"body": "Mine now"}),
             "edit_others"),
            (await contributor.patch(f"/api/posts/{mine['id']}", json={"pinned": True}), "pin"),
            (await contributor.patch(f"/api/posts/{mine['id']}",
                                     json={"body": "x", "pinned": True}), "pin"),
            (await contributor.post("/api/streams/vote/posts",
                                    json={"body": "Key moment", "pinned": True}), "pin"),
            (await contributor.delete(f"/api/posts/{alices}"), "edit_others"),
            (await contributor.post("/api/streams", json={"slug": "mine", "title": "Mine"}),
             "create_stream"),
            (await contributor.patch("/api/streams/vote", json={"status": "ended"}),
             "change_stream"),
            (await contributor.delete("/api/media/1"), "take_down"),
        ]:
            _refused(response, 403, "forbidden_for_role")
            assert response.json()["error"]["details"] == {"role": "contributor",
                                                           "action": action}
        # Their own post, once published, is the desk's to change (a contributor may
        # withdraw it only while it waits).
        _refused(await contributor.delete(f"/api/posts/{mine['id']}"), 403,
                 "already_published")
        _refused(await contributor.patch(f"/api/posts/{mine['id']}", json={"body": "y"}),
                 403, "already_published")
        assert await snapshot(db) == before
        _refused(await contributor.patch("/api/posts/999999", json={"body": "x"}), 404,
                 "post_not_found")


async def test_an_editor_edits_pins_and_deletes_anyones_post(
    app: Starlette, db: Database, editor: EditorLogin, stories: dict[str, Any]
) -> None:
    """The editor role keeps today's powers over a contributor's post."""
    cora = await make_editor(db, "cora", role="contributor")
    async with _client(app, cora.token) as contributor:
        theirs = await new_post(contributor, "vote", "From the field")
    async with _client(app, editor.token) as alice:
        assert (await alice.patch(f"/api/posts/{theirs['id']}",
                                  json={"body": "Polished", "pinned": True})).status_code == 200
        assert (await alice.delete(f"/api/posts/{theirs['id']}")).status_code == 200


async def test_a_contributor_on_the_desk_is_held_to_the_same_limits(
    app: Starlette, db: Database, editor: EditorLogin, stories: dict[str, Any]
) -> None:
    """With the session cookie, a contributor may not create or end streams, pin (a new
    post either), edit alice's post or take a photo down (403 pages), and nothing
    changes; editing their own post that waits works (withdrawing it too: test_publishing)."""
    from tests.web.test_desk import desk_client, sign_in

    await make_editor(db, "cora", role="contributor")
    async with desk_client(app) as desk:
        csrf = await sign_in(desk, "cora")
        mine = await desk.post("/api/streams/vote/posts", json={"body": "Field note"},
                               headers={"X-CSRF-Token": csrf})
        assert mine.status_code == 201
        own = await desk.post(f"/editor/posts/{mine.json()['id']}/edit",
                              data={"csrf_token": csrf, "body": "Field note, fixed"})
        assert own.status_code == 303
        before = await snapshot(db)
        alices = stories["vote"]["id"]
        for path, form in [
            ("/editor/streams", {"slug": "mine", "title": "Mine"}),
            ("/editor/streams/vote/posts", {"body": "Key moment", "pinned": "1"}),
            ("/editor/streams/vote/status", {"status": "ended", "confirm": "1"}),
            (f"/editor/posts/{alices}/edit", {"body": "Taken over"}),
            (f"/editor/posts/{alices}/pin", {"pinned": "1"}),
            ("/editor/media/1/take-down", {"stream": "vote"}),
        ]:
            response = await desk.post(path, data={"csrf_token": csrf, **form})
            assert response.status_code == 403, path
            assert "text/html" in response.headers["content-type"]
            assert "contributor may not" in response.text, path
        assert await snapshot(db) == before
