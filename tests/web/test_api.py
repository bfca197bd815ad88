"""The JSON API through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor
from tests.helpers import events, new_post, new_stream, snapshot

# --- streams -----------------------------------------------------------------------------


async def test_create_stream_defaults_to_draft(editor_client: httpx.AsyncClient) -> None:
    """A new stream is a draft with seq 0 unless a status is given."""
    response = await editor_client.post("/api/streams", json={"slug": "vote", "title": "Vote"})
    assert response.status_code == 201
    data = response.json()
    assert data["slug"] == "vote"
    assert data["status"] == "draft"
    assert data["seq"] == 0
    assert data["pinned"] == []
    assert data["started_at"] is None
    assert data["created_at"].endswith("Z")


async def test_drafts_are_hidden_from_anonymous_readers(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient
) -> None:
    """Anonymous callers see live and ended streams; a draft is a 404 to them."""
    await new_stream(editor_client, "secret-plan", status="draft")
    await new_stream(editor_client, "match", status="live")
    listed = (await client.get("/api/streams")).json()["streams"]
    assert [s["slug"] for s in listed] == ["match"]
    assert (await client.get("/api/streams/secret-plan")).status_code == 404
    assert (await client.get("/api/streams/secret-plan/posts")).status_code == 404
    assert (await client.get("/api/streams/secret-plan/events")).status_code == 404
    mine = (await editor_client.get("/api/streams")).json()["streams"]
    assert {s["slug"] for s in mine} == {"secret-plan", "match"}
    assert (await editor_client.get("/api/streams/secret-plan")).status_code == 200


async def test_streams_filter_by_status_and_page_newest_first(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """GET /api/streams pages newest first with a cursor and filters by status."""
    for i in range(5):
        await new_stream(editor_client, f"s{i}", status="live")
    await editor_client.patch("/api/streams/s1", json={"status": "ended"})
    first = (await client.get("/api/streams", params={"limit": 2})).json()
    assert [s["slug"] for s in first["streams"]] == ["s4", "s3"]
    second = (await client.get("/api/streams", params={"limit": 2,
                                                       "before": first["next_cursor"]})).json()
    assert [s["slug"] for s in second["streams"]] == ["s2", "s1"]
    third = (await client.get(second["links"]["next"])).json()
    assert [s["slug"] for s in third["streams"]] == ["s0"] and third["next_cursor"] is None
    ended = (await client.get("/api/streams", params={"status": "ended"})).json()
    assert [s["slug"] for s in ended["streams"]] == ["s1"]
    bad = await client.get("/api/streams", params={"status": "paused"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"


async def test_anonymous_status_filter_cannot_reveal_drafts(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """status=draft lists nothing for anonymous callers."""
    await new_stream(editor_client, "plan", status="draft")
    listed = (await client.get("/api/streams", params={"status": "draft"})).json()
    assert listed["streams"] == []


async def test_index_points_to_the_api(client: httpx.AsyncClient) -> None:
    """GET / names the server and links to the API."""
    index = (await client.get("/")).json()
    assert index["name"] == "Bulletin"
    assert index["links"]["streams"] == "/api/streams"


async def test_going_live_and_ending_are_events(editor_client: httpx.AsyncClient) -> None:
    """Status changes append stream.updated and stream.ended events with the new state."""
    await new_stream(editor_client, "night", status="draft")
    live = await editor_client.patch("/api/streams/night", json={"status": "live"})
    assert live.status_code == 200
    assert live.json()["status"] == "live" and live.json()["started_at"] is not None
    ended = await editor_client.patch("/api/streams/night", json={"status": "ended"})
    assert ended.json()["ended_at"] is not None
    log = await events(editor_client, "night")
    assert [(e["seq"], e["op"]) for e in log] == [(1, "stream.updated"), (2, "stream.ended")]
    assert log[0]["stream_info"]["status"] == "live"
    assert log[1]["stream_info"]["status"] == "ended"
    assert log[1]["stream_info"]["seq"] == 2


async def test_stream_title_change_is_an_event(editor_client: httpx.AsyncClient) -> None:
    """Editing the title appends stream.updated; an unchanged PATCH appends nothing."""
    await new_stream(editor_client, "night")
    await editor_client.patch("/api/streams/night", json={"title": "Night of the count"})
    same = await editor_client.patch("/api/streams/night", json={"title": "Night of the count"})
    assert same.status_code == 200
    log = await events(editor_client, "night")
    assert [e["op"] for e in log] == ["stream.updated"]
    assert log[0]["stream_info"]["title"] == "Night of the count"


async def test_live_stream_cannot_go_back_to_draft(
    editor_client: httpx.AsyncClient, db: Database
) -> None:
    """live -> draft is a 409 naming both states, and changes nothing."""
    await new_stream(editor_client, "night")
    before = await snapshot(db)
    response = await editor_client.patch("/api/streams/night", json={"status": "draft"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert response.json()["error"]["details"] == {"from": "live", "to": "draft"}
    assert await snapshot(db) == before


async def test_ended_stream_can_be_reopened(editor_client: httpx.AsyncClient) -> None:
    """An ended stream can go live again, which clears ended_at."""
    await new_stream(editor_client, "night")
    await editor_client.patch("/api/streams/night", json={"status": "ended"})
    reopened = await editor_client.patch("/api/streams/night", json={"status": "live"})
    assert reopened.json()["status"] == "live" and reopened.json()["ended_at"] is None


async def test_slug_taken_is_a_conflict(editor_client: httpx.AsyncClient, db: Database) -> None:
    """A second stream with the same slug is a 409 and leaves the first untouched."""
    await new_stream(editor_client, "night")
    before = await snapshot(db)
    response = await editor_client.post("/api/streams", json={"slug": "night", "title": "B"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slug_taken"
    assert await snapshot(db) == before


# --- posts -------------------------------------------------------------------------------


async def test_post_is_created_with_its_seq(
    editor_client: httpx.AsyncClient, editor: EditorLogin
) -> None:
    """POST a post: 201 with the rendered post, its author and the seq of its event."""
    await new_stream(editor_client, "night")
    response = await editor_client.post(
        "/api/streams/night/posts", json={"body": "**Polls** have closed."})
    assert response.status_code == 201
    post = response.json()
    assert post["seq"] == 1
    assert post["html"] == "<p><strong>Polls</strong> have closed.</p>"
    assert post["body"] == "**Polls** have closed."
    assert post["author"] == {"id": editor.editor_id, "name": "Alice"}
    assert post["pinned"] is False and post["revision"] == 1 and post["deleted"] is False
    log = await events(editor_client, "night")
    assert log[0]["op"] == "post.created" and log[0]["post"]["id"] == post["id"]


async def test_posting_to_an_ended_stream_is_a_conflict(
    editor_client: httpx.AsyncClient, db: Database
) -> None:
    """Posting to an ended stream is a 409 and writes nothing."""
    await new_stream(editor_client, "night")
    await editor_client.patch("/api/streams/night", json={"status": "ended"})
    before = await snapshot(db)
    response = await editor_client.post("/api/streams/night/posts", json={"body": "late"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stream_ended"
    assert await snapshot(db) == before


async def test_posting_to_a_missing_stream_is_not_found(
    editor_client: httpx.AsyncClient,
) -> None:
    """Posting to a stream that does not exist is a 404."""
    response = await editor_client.post("/api/streams/nope/posts", json={"body": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "stream_not_found"


async def test_editing_keeps_the_previous_text_as_a_revision(
    editor_client: httpx.AsyncClient, db: Database
) -> None:
    """An edit bumps the revision, sets edited_at, emits post.edited and keeps the old text."""
    await new_stream(editor_client, "night")
    post = await new_post(editor_client, "night", "Turnout 52%")
    edited = await editor_client.patch(f"/api/posts/{post['id']}", json={"body": "Turnout 50.4%"})
    assert edited.status_code == 200
    data = edited.json()
    assert data["revision"] == 2 and data["edited_at"] is not None
    assert data["html"] == "<p>Turnout 50.4%</p>" and data["seq"] == 2
    history = (await editor_client.get(f"/api/posts/{post['id']}/revisions")).json()
    assert [(r["revision"], r["body"]) for r in history["revisions"]] == [(1, "Turnout 52%")]
    log = await events(editor_client, "night")
    assert log[-1]["op"] == "post.edited" and log[-1]["post"]["body"] == "Turnout 50.4%"


async def test_revisions_are_for_editors_only(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient
) -> None:
    """Anonymous readers cannot read a post's earlier texts."""
    await new_stream(editor_client, "night")
    post = await new_post(editor_client, "night", "x")
    response = await client.get(f"/api/posts/{post['id']}/revisions")
    assert response.status_code == 401


async def test_pin_and_unpin_are_events_and_show_on_the_stream(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Pinning emits post.pinned and lists the post under the stream's key events."""
    await new_stream(editor_client, "night")
    post = await new_post(editor_client, "night", "Result declared")
    await editor_client.patch(f"/api/posts/{post['id']}", json={"pinned": True})
    stream = (await client.get("/api/streams/night")).json()
    assert [p["id"] for p in stream["pinned"]] == [post["id"]]
    assert stream["seq"] == 2
    await editor_client.patch(f"/api/posts/{post['id']}", json={"pinned": False})
    assert (await client.get("/api/streams/night")).json()["pinned"] == []
    ops = [e["op"] for e in await events(client, "night")]
    assert ops == ["post.created", "post.pinned", "post.unpinned"]


async def test_edit_and_pin_in_one_request_are_two_events(
    editor_client: httpx.AsyncClient,
) -> None:
    """A PATCH changing text and pin appends post.edited then post.pinned, consecutive seqs."""
    await new_stream(editor_client, "night")
    post = await new_post(editor_client, "night", "a")
    response = await editor_client.patch(f"/api/posts/{post['id']}",
                                         json={"body": "b", "pinned": True})
    assert response.json()["seq"] == 3
    log = await events(editor_client, "night")
    assert [(e["seq"], e["op"]) for e in log] == [
        (1, "post.created"), (2, "post.edited"), (3, "post.pinned")]


async def test_delete_hides_the_post_and_its_text(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A deleted post leaves the feed; its post.deleted event carries no text."""
    await new_stream(editor_client, "night")
    keep = await new_post(editor_client, "night", "keep")
    gone = await new_post(editor_client, "night", "typo-laden mess")
    response = await editor_client.delete(f"/api/posts/{gone['id']}")
    assert response.status_code == 200 and response.json()["deleted"] is True
    posts = (await client.get("/api/streams/night/posts")).json()["posts"]
    assert [p["id"] for p in posts] == [keep["id"]]
    assert (await client.get(f"/api/posts/{gone['id']}")).status_code == 404
    last = (await events(client, "night"))[-1]
    assert last["op"] == "post.deleted"
    assert last["post"]["body"] is None and last["post"]["html"] is None
    again = await editor_client.delete(f"/api/posts/{gone['id']}")
    assert again.status_code == 404


async def test_posts_page_newest_first_with_a_cursor(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Paging with limit and before walks every post once, newest first."""
    await new_stream(editor_client, "night")
    ids = [(await new_post(editor_client, "night", f"update {i}"))["id"] for i in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["before"] = cursor
        page = (await client.get("/api/streams/night/posts", params=params)).json()
        seen += [p["id"] for p in page["posts"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


async def test_events_since_pages_through_the_log(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """events?since=N&limit=M returns seq N+1.. in order and says when more remain."""
    await new_stream(editor_client, "night")
    for i in range(5):
        await new_post(editor_client, "night", f"u{i}")
    page = (await client.get("/api/streams/night/events", params={"since": 1, "limit": 2})).json()
    assert [e["seq"] for e in page["events"]] == [2, 3]
    assert page["has_more"] is True and page["seq"] == 5
    rest = (await client.get("/api/streams/night/events", params={"since": 3})).json()
    assert [e["seq"] for e in rest["events"]] == [4, 5] and rest["has_more"] is False


async def test_events_since_past_the_end_is_a_conflict(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A since beyond the newest seq (a client from another database) is a 409 with the seq."""
    await new_stream(editor_client, "night")
    response = await client.get("/api/streams/night/events", params={"since": 99})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "since_ahead", "message": response.json()["error"]["message"],
        "details": {"seq": 0}}


async def test_every_event_carries_the_full_post_state(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """The events alone rebuild the feed: applying them gives what GET posts returns."""
    await new_stream(editor_client, "night")
    a = await new_post(editor_client, "night", "a")
    b = await new_post(editor_client, "night", "b")
    await new_post(editor_client, "night", "c")
    await editor_client.patch(f"/api/posts/{a['id']}", json={"body": "a2", "pinned": True})
    await editor_client.delete(f"/api/posts/{b['id']}")
    state: dict[int, dict[str, Any]] = {}
    for event in await events(client, "night"):
        post = event["post"]
        if post["deleted"]:
            state.pop(post["id"], None)
        else:
            state[post["id"]] = post
    feed = (await client.get("/api/streams/night/posts")).json()["posts"]
    assert [state[k] for k in sorted(state, reverse=True)] == feed


async def test_committed_events_are_published_to_the_broker(
    app: Any, editor_client: httpx.AsyncClient
) -> None:
    """Each committed event goes to the stream's broker channel, byte for byte as stored;
    a refused write and an idempotent replay publish nothing. (The post pinned is one
    made before: a change restates its post's earlier events, see test_store.)"""
    broker = app.state.services.broker
    await new_stream(editor_client, "night")
    earlier = await new_post(editor_client, "night", "z")
    published: list[tuple[str, str]] = []
    original = broker.publish

    async def record(channel: str, payload: str) -> None:
        published.append((channel, payload))
        await original(channel, payload)

    broker.publish = record
    post = await editor_client.post("/api/streams/night/posts", json={"body": "a"},
                                    headers={"Idempotency-Key": "once"})
    await editor_client.post("/api/streams/night/posts", json={"body": "a"},
                             headers={"Idempotency-Key": "once"})
    await editor_client.post("/api/streams/night/posts", json={"body": ""})
    assert post.status_code == 201
    await editor_client.patch(f"/api/posts/{earlier['id']}", json={"pinned": True})
    await editor_client.patch("/api/streams/night", json={"status": "ended"})
    stored = (await editor_client.get("/api/streams/night/events?since=1")).text
    assert [channel for channel, _ in published] == ["stream:night"] * 3
    assert f'"events":[{",".join(payload for _, payload in published)}]' in stored


# --- idempotency -------------------------------------------------------------------------


async def test_idempotency_key_returns_the_first_post(
    editor_client: httpx.AsyncClient,
) -> None:
    """A retried POST with the same key returns the first response and creates nothing."""
    await new_stream(editor_client, "night")
    headers = {"Idempotency-Key": "retry-1"}
    first = await editor_client.post("/api/streams/night/posts", json={"body": "once"},
                                     headers=headers)
    second = await editor_client.post("/api/streams/night/posts", json={"body": "once"},
                                      headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(await events(editor_client, "night")) == 1


async def test_concurrent_retries_with_one_key_create_one_post(
    editor_client: httpx.AsyncClient,
) -> None:
    """Several simultaneous requests with the same key still create exactly one post."""
    await new_stream(editor_client, "night")
    responses = await asyncio.gather(*[
        editor_client.post("/api/streams/night/posts", json={"body": "once"},
                           headers={"Idempotency-Key": "burst"}) for _ in range(5)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await events(editor_client, "night")) == 1


async def test_idempotency_key_reused_for_another_body_is_refused(
    editor_client: httpx.AsyncClient,
) -> None:
    """The same key with a different body is a 422, not a silent replay."""
    await new_stream(editor_client, "night")
    headers = {"Idempotency-Key": "k"}
    await editor_client.post("/api/streams/night/posts", json={"body": "a"}, headers=headers)
    response = await editor_client.post("/api/streams/night/posts", json={"body": "b"},
                                        headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


async def test_idempotency_keys_are_per_editor(
    app: Any, db: Database, editor_client: httpx.AsyncClient
) -> None:
    """Two editors using the same key each get their own post."""
    await new_stream(editor_client, "night")
    bob = await make_editor(db, "bob")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                 headers=bob.headers) as bob_client:
        a = await editor_client.post("/api/streams/night/posts", json={"body": "x"},
                                     headers={"Idempotency-Key": "same"})
        b = await bob_client.post("/api/streams/night/posts", json={"body": "x"},
                                  headers={"Idempotency-Key": "same"})
    assert a.json()["id"] != b.json()["id"]


async def test_a_refused_post_does_not_consume_its_idempotency_key(
    editor_client: httpx.AsyncClient,
) -> None:
    """A post refused (ended stream) can be retried with the same key once fixed."""
    await new_stream(editor_client, "night")
    await editor_client.patch("/api/streams/night", json={"status": "ended"})
    headers = {"Idempotency-Key": "k2"}
    refused = await editor_client.post("/api/streams/night/posts", json={"body": "x"},
                                       headers=headers)
    assert refused.status_code == 409
    await editor_client.patch("/api/streams/night", json={"status": "live"})
    accepted = await editor_client.post("/api/streams/night/posts", json={"body": "x"},
                                        headers=headers)
    assert accepted.status_code == 201


# --- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/streams"), ("PATCH", "/api/streams/night"),
     ("POST", "/api/streams/night/posts"), ("PATCH", "/api/posts/1"),
     ("DELETE", "/api/posts/1"), ("GET", "/api/me")],
)
async def test_writes_refuse_anonymous_callers(
    client: httpx.AsyncClient, db: Database, method: str, path: str
) -> None:
    """Every write endpoint is a 401 with WWW-Authenticate for anonymous callers."""
    before = await snapshot(db)
    response = await client.request(method, path, json={"body": "x", "title": "t"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "authentication_required"
    assert await snapshot(db) == before


@pytest.mark.parametrize("header", ["Bearer nope", "Basic YWxpY2U6cHc=", "Bearer", "blt_abc"])
async def test_bad_credentials_are_refused_even_on_reads(
    client: httpx.AsyncClient, header: str
) -> None:
    """A wrong or malformed Authorization header is a 401, not a silent anonymous read."""
    response = await client.get("/api/streams", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"invalid_token", "invalid_authorization"}


async def test_revoked_token_is_refused(
    editor_client: httpx.AsyncClient, db: Database, editor: EditorLogin
) -> None:
    """A revoked token no longer authenticates."""
    from bulletin.store import accounts

    async with db.write() as session:
        editor_row = await accounts.get_editor(session, username="alice")
        for token in await accounts.list_tokens(session, editor=editor_row):
            assert token.id is not None
            await accounts.revoke_token(session, token_id=token.id)
    response = await editor_client.get("/api/me")
    assert response.status_code == 401


async def test_disabled_editor_is_forbidden(editor_client: httpx.AsyncClient, db: Database
                                            ) -> None:
    """A disabled editor's token is a 403."""
    from bulletin.store import accounts

    async with db.write() as session:
        (await accounts.get_editor(session, username="alice")).disabled = True
    response = await editor_client.post("/api/streams", json={"slug": "x", "title": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "editor_disabled"


async def test_me_names_the_token_owner(editor_client: httpx.AsyncClient) -> None:
    """GET /api/me returns the editor behind the token, and records the token's use."""
    me = (await editor_client.get("/api/me")).json()
    assert me["username"] == "alice" and me["role"] == "editor"


async def test_repeated_bad_tokens_are_rate_limited(
    settings: Any, database_url: str
) -> None:
    """After the allowed failures per minute, a client guessing tokens gets 429."""
    from dataclasses import replace

    from bulletin.web.app import create_app

    app = create_app(replace(settings, auth_failures_per_minute=3))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            codes = [(await c.get("/api/me", headers={"Authorization": f"Bearer g{i}"}))
                     for i in range(5)]
    assert [r.status_code for r in codes] == [401, 401, 401, 429, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1


async def test_writes_are_rate_limited_per_editor(settings: Any, db: Database) -> None:
    """An editor over the write rate gets 429 with Retry-After, and nothing is written."""
    from dataclasses import replace

    from bulletin.web.app import create_app

    app = create_app(replace(settings, write_rate=0.01, write_burst=2))
    async with app.router.lifespan_context(app):
        login = await make_editor(db, "carol")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     headers=login.headers) as c:
            await new_stream(c, "night")
            await new_post(c, "night", "one")
            before = await snapshot(db)
            limited = await c.post("/api/streams/night/posts", json={"body": "two"})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert await snapshot(db) == before


# --- bad input: a clear 4xx, never a 500, and nothing changed ----------------------------

BAD_POSTS: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("not json", b"{body: 1", {}, 400, "invalid_json"),
    ("not utf-8", b'{"body": "\xff"}', {}, 400, "invalid_json"),
    ("array", b'["a"]', {}, 422, "validation_error"),
    ("body missing", b"{}", {}, 422, "validation_error"),
    ("body not a string", b'{"body": 12}', {}, 422, "validation_error"),
    ("pinned not a bool", b'{"body": "a", "pinned": "yes"}', {}, 422, "validation_error"),
    ("unknown field", b'{"body": "a", "sticky": true}', {}, 422, "validation_error"),
    ("empty body", b'{"body": ""}', {}, 422, "empty_post"),
    ("blank body", b'{"body": "   \\n  "}', {}, 422, "empty_post"),
    ("image only over http", b'{"body": "![x](http://example.com/x.png)"}', {}, 422,
     "empty_post"),
    ("nul byte", b'{"body": "a\\u0000b"}', {}, 422, "validation_error"),
    ("lone surrogate", b'{"body": "\\ud800"}', {}, 422, "validation_error"),
    ("wrong media type", b'{"body": "a"}', {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type"),
    ("bad idempotency key", b'{"body": "a"}', {"Idempotency-Key": "has space"}, 400,
     "invalid_idempotency_key"),
    ("too long", b'{"body": "' + b"a" * 20_001 + b'"}', {}, 422, "post_too_long"),
    ("too large", b'{"body": "' + b"a" * 70_000 + b'"}', {}, 413, "body_too_large"),
]


@pytest.mark.parametrize(("name", "raw", "headers", "status", "code"), BAD_POSTS,
                         ids=[b[0] for b in BAD_POSTS])
async def test_bad_posts_are_refused_cleanly(
    editor_client: httpx.AsyncClient, db: Database,
    name: str, raw: bytes, headers: dict[str, str], status: int, code: str,
) -> None:
    """Each kind of bad post body gets its status and code, and the database is unchanged."""
    await new_stream(editor_client, "night")
    before = await snapshot(db)
    response = await editor_client.post(
        "/api/streams/night/posts", content=raw,
        headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert await snapshot(db) == before


async def test_validation_errors_name_each_field(editor_client: httpx.AsyncClient) -> None:
    """A 422 lists every bad field in details."""
    response = await editor_client.post(
        "/api/streams", json={"slug": "Bad Slug!", "title": 5, "colour": "red"})
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"slug", "title", "colour"}


@pytest.mark.parametrize("slug", ["UPPER", "-dash", "dash-", "a" * 65, "spa ce", "ünï", ""])
async def test_invalid_slugs_are_refused(
    editor_client: httpx.AsyncClient, db: Database, slug: str
) -> None:
    """Slugs must be lowercase URL-safe words; others are a 422 with nothing created."""
    before = await snapshot(db)
    response = await editor_client.post("/api/streams", json={"slug": slug, "title": "T"})
    assert response.status_code == 422
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/streams/%00", 404), ("/api/streams/a%20b", 404), ("/api/streams/%E2%80%AE", 404),
     ("/api/posts/99999999999999", 404),
     ("/api/posts/abc", 404), ("/api/nothing", 404),
     ("/api/streams/night/posts?limit=abc", 400), ("/api/streams/night/posts?limit=0", 400),
     ("/api/streams/night/posts?before=xyz", 400),
     ("/api/streams/night/posts?before=99999999999999999", 200),
     ("/api/streams/night/events?since=-1", 400), ("/api/streams/night/events?since=1e3", 400),
     ("/api/streams/night/events?since=99999999999999999", 409)],
)
async def test_odd_urls_get_clear_errors(
    editor_client: httpx.AsyncClient, path: str, status: int
) -> None:
    """Malformed ids, slugs and parameters are 4xx with an error code, never 500."""
    await new_stream(editor_client, "night")
    response = await editor_client.get(path)
    assert response.status_code == status
    if status >= 400:
        assert response.json()["error"]["code"]


async def test_wrong_method_is_405_json(client: httpx.AsyncClient) -> None:
    """An unsupported method on an API path is a JSON 405."""
    response = await client.put("/api/streams")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_empty_patch_is_refused(editor_client: httpx.AsyncClient) -> None:
    """A PATCH that changes no field is a 422 saying what may be sent."""
    await new_stream(editor_client, "night")
    post = await new_post(editor_client, "night", "x")
    assert (await editor_client.patch("/api/streams/night", json={})).status_code == 422
    assert (await editor_client.patch(f"/api/posts/{post['id']}", json={})).status_code == 422


# --- browsers on other origins ----------------------------------------------------------


async def test_cors_allows_only_listed_origins(settings: Any) -> None:
    """Listed origins get CORS headers and preflight answers; others get neither."""
    from dataclasses import replace

    from bulletin.web.app import create_app

    app = create_app(replace(settings, allowed_origins=("https://news.example",)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            listed = await c.get("/api/streams", headers={"Origin": "https://news.example"})
            other = await c.get("/api/streams", headers={"Origin": "https://evil.example"})
            preflight = await c.options("/api/streams", headers={
                "Origin": "https://news.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, idempotency-key"})
            refused = await c.options("/api/streams", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert listed.headers["access-control-allow-origin"] == "https://news.example"
    assert "access-control-allow-credentials" not in listed.headers
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 200
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400


# --- health ------------------------------------------------------------------------------


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    """/healthz says the process is up; /readyz checks the database and the broker."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_readiness_reports_an_unreachable_database() -> None:
    """/readyz is a 503 naming the database, and API calls a 503, while it is unreachable.

    The database is a PostgreSQL URL on a port nothing listens on: what an outage looks
    like in production. (A SQLite file in a missing folder fails too, but aiosqlite then
    stops its worker thread without awaiting it, which races with the test's loop.)
    """
    import socket

    from bulletin.settings import Settings
    from bulletin.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(database_url=f"postgresql+asyncpg://x@127.0.0.1:{port}/none",
                              secret_key="k" * 40))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            ready = await c.get("/readyz")
            read = await c.get("/api/streams")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "unreachable", "broker": "ok"}
    assert read.status_code == 503
    assert read.json()["error"]["code"] == "database_unavailable"
    assert read.headers["retry-after"] == "2"
