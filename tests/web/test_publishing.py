"""Posts that wait, through the API on SQLite and PostgreSQL: a contributor's post is
invisible to readers until an editor approves it (then one post.created with the next
seq), can be sent back and resubmitted, and a contributor's limits hold; a scheduled post
is invisible until the scheduler publishes it at its time, and can be rescheduled,
cancelled or published now."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor
from tests.helpers import events, new_post, new_stream, snapshot


async def make_contributor(db: Database, username: str) -> EditorLogin:
    """An account with the contributor role (written directly: `bulletin editor create
    --role` comes with the tokens work)."""
    login = await make_editor(db, username)
    async with db.write() as session:
        await session.exec(sa.text("UPDATE editors SET role = 'contributor' WHERE id = :i"),
                           params={"i": login.editor_id})
    return login


@pytest.fixture
async def contributor(app: Starlette, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client sending the token of carol, a contributor."""
    login = await make_contributor(db, "carol")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver", headers=login.headers) as c:
        yield c


def _at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _submit(client: httpx.AsyncClient, slug: str, body: str, **extra: Any
                  ) -> dict[str, Any]:
    response = await client.post(f"/api/streams/{slug}/posts", json={"body": body, **extra})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _public_ids(client: httpx.AsyncClient, slug: str) -> list[int]:
    return [p["id"] for p in (await client.get(f"/api/streams/{slug}/posts")).json()["posts"]]


# --- contributors ------------------------------------------------------------------------


async def test_a_contributors_post_waits_unseen_by_readers(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient,
    contributor: httpx.AsyncClient,
) -> None:
    """A contributor's post is stored as submitted with no seq and no event; readers find
    it nowhere (the API, the log, the page, its JSON-LD), editors list it."""
    stream = await new_stream(editor_client, "s")
    post = await _submit(contributor, "s", "Field report: crowds at the gate")
    assert post["status"] == "submitted" and post["seq"] is None
    assert (await editor_client.get("/api/streams/s")).json()["seq"] == stream["seq"]
    assert await events(editor_client, "s") == []
    assert await _public_ids(client, "s") == []
    assert (await client.get(f"/api/posts/{post['id']}")).status_code == 404
    page = await client.get("/live/s")
    assert page.status_code == 200 and "crowds at the gate" not in page.text
    assert (await client.get(f"/live/s/posts/{post['id']}")).status_code == 404
    waiting = (await editor_client.get("/api/streams/s/posts?status=submitted")).json()
    assert [p["id"] for p in waiting["posts"]] == [post["id"]]
    assert waiting["posts"][0]["status"] == "submitted"
    assert (await editor_client.get(f"/api/posts/{post['id']}")).json()["status"] == \
        "submitted"
    assert (await client.get("/api/streams/s/posts?status=submitted")).status_code == 401
    assert (await editor_client.get("/api/streams/s/posts?status=nope")).status_code == 400


async def test_approval_publishes_with_the_next_seq_at_the_top(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient,
    contributor: httpx.AsyncClient,
) -> None:
    """Approving writes one post.created with the next seq, at the approval's time: the
    post goes to the top of the readers' list, above posts published while it waited;
    approving it again is a 409 that changes nothing."""
    await new_stream(editor_client, "s")
    submitted = await _submit(contributor, "s", "From the square")
    meanwhile = await new_post(editor_client, "s", "Published while it waited")
    response = await editor_client.post(f"/api/posts/{submitted['id']}/approve")
    assert response.status_code == 200, response.text
    approved = response.json()
    assert approved["status"] == "published" and approved["seq"] == meanwhile["seq"] + 1
    assert _time(approved["created_at"]) > _time(meanwhile["created_at"])
    log = await events(client, "s")
    assert [(e["seq"], e["op"], e["post"]["id"]) for e in log] == [
        (meanwhile["seq"], "post.created", meanwhile["id"]),
        (approved["seq"], "post.created", submitted["id"])]
    assert "status" not in log[-1]["post"]  # readers' JSON stays as it was
    assert log[-1]["post"]["created_at"] == approved["created_at"]
    assert await _public_ids(client, "s") == [submitted["id"], meanwhile["id"]]
    again = await editor_client.post(f"/api/posts/{submitted['id']}/approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_published"
    assert len(await events(client, "s")) == 2


async def test_a_post_sent_back_is_edited_and_submitted_again(
    editor_client: httpx.AsyncClient, contributor: httpx.AsyncClient,
) -> None:
    """Sending back returns the post with the editor's note (no event); the contributor
    sees it, and their edit submits it again; only a submitted post can be sent back."""
    await new_stream(editor_client, "s")
    post = await _submit(contributor, "s", "Ten thousand people")
    empty = await editor_client.post(f"/api/posts/{post['id']}/send-back", json={"note": " "})
    assert empty.status_code == 422
    back = await editor_client.post(f"/api/posts/{post['id']}/send-back",
                                    json={"note": "Who counted? Give a source."})
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "returned"
    mine = (await contributor.get("/api/streams/s/posts?status=returned")).json()["posts"]
    assert [(p["id"], p["note"]) for p in mine] == [(post["id"], "Who counted? Give a source.")]
    twice = await editor_client.post(f"/api/posts/{post['id']}/send-back", json={"note": "x"})
    assert twice.status_code == 409
    edited = await contributor.patch(f"/api/posts/{post['id']}",
                                     json={"body": "Ten thousand people, police say"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "submitted" and edited.json()["seq"] is None
    assert await events(editor_client, "s") == []
    approved = (await editor_client.post(f"/api/posts/{post['id']}/approve")).json()
    assert approved["body"] == "Ten thousand people, police say"
    # Readers meet it as a new post, not an edited one.
    assert approved["edited_at"] is None and approved["note"] is None


async def test_a_contributor_cannot_do_what_editors_do(
    db: Database, app: Starlette, editor_client: httpx.AsyncClient,
    contributor: httpx.AsyncClient,
) -> None:
    """A contributor cannot approve, send back, pin, schedule, change or start streams,
    edit or delete others' posts or their own once published: each a 403 with its code,
    changing nothing. They list and read only their own posts that wait."""
    await new_stream(editor_client, "s")
    mine = await _submit(contributor, "s", "Mine")
    others = await new_post(editor_client, "s", "An editor's")
    other_login = await make_contributor(db, "dave")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver",
                                 headers=other_login.headers) as dave:
        theirs = await _submit(dave, "s", "Dave's")
        assert (await dave.get(f"/api/posts/{mine['id']}")).status_code == 404
        listed = (await dave.get("/api/streams/s/posts?status=submitted")).json()["posts"]
        assert [p["id"] for p in listed] == [theirs["id"]]
        refused = await dave.patch(f"/api/posts/{mine['id']}", json={"body": "Hijacked"})
        # Another's post is the role's rule (edit_others), before any status is looked at.
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden_for_role"
    before = await snapshot(db)
    attempts = [
        contributor.post(f"/api/posts/{mine['id']}/approve"),
        contributor.post(f"/api/posts/{mine['id']}/send-back", json={"note": "x"}),
        contributor.post("/api/streams/s/posts", json={"body": "Key!", "pinned": True}),
        contributor.post("/api/streams/s/posts", json={"body": "Later",
                                                       "publish_at": _at(60)}),
        contributor.patch(f"/api/posts/{mine['id']}", json={"pinned": True}),
        contributor.patch("/api/streams/s", json={"title": "Mine now"}),
        contributor.post("/api/streams", json={"slug": "new", "title": "New"}),
    ]
    for response in await asyncio.gather(*attempts):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden_for_role"
    for response in (await contributor.patch(f"/api/posts/{others['id']}", json={"body": "x"}),
                     await contributor.delete(f"/api/posts/{others['id']}")):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden_for_role"
    assert await snapshot(db) == before
    await editor_client.post(f"/api/posts/{mine['id']}/approve")
    for response in (await contributor.patch(f"/api/posts/{mine['id']}", json={"body": "x"}),
                     await contributor.delete(f"/api/posts/{mine['id']}")):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "already_published"


async def test_deleting_a_post_that_waits_writes_no_event(
    editor_client: httpx.AsyncClient, contributor: httpx.AsyncClient,
) -> None:
    """A submitted post deleted by its contributor or by an editor, and a scheduled post
    cancelled, are gone without an event; a deleted post cannot be approved."""
    await new_stream(editor_client, "s")
    first = await _submit(contributor, "s", "Withdrawn")
    second = await _submit(contributor, "s", "Spiked")
    scheduled = await _submit(editor_client, "s", "Cancelled", publish_at=_at(60))
    withdrawn = await contributor.delete(f"/api/posts/{first['id']}")
    assert withdrawn.status_code == 200 and withdrawn.json()["seq"] is None
    assert (await editor_client.delete(f"/api/posts/{second['id']}")).status_code == 200
    assert (await editor_client.delete(f"/api/posts/{scheduled['id']}")).status_code == 200
    assert await events(editor_client, "s") == []
    assert (await editor_client.get("/api/streams/s")).json()["seq"] == 0
    assert (await editor_client.post(f"/api/posts/{first['id']}/approve")).status_code == 404
    for status in ("submitted", "scheduled"):
        listed = await editor_client.get(f"/api/streams/s/posts?status={status}")
        assert listed.json()["posts"] == []


# --- scheduled posts ---------------------------------------------------------------------


async def test_publish_at_must_be_a_future_time_with_a_zone(
    db: Database, editor_client: httpx.AsyncClient,
) -> None:
    """A time in the past, without a time zone or not a time at all is a 422 that stores
    nothing."""
    await new_stream(editor_client, "s")
    before = await snapshot(db)
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    for value, code in ((_at(-5), "publish_at_past"), (naive, "validation_error"),
                        ("tomorrow", "validation_error"), (1770000000, "validation_error")):
        response = await editor_client.post("/api/streams/s/posts",
                                            json={"body": "Recap", "publish_at": value})
        assert response.status_code == 422, (value, response.text)
        assert response.json()["error"]["code"] == code
    assert await snapshot(db) == before


async def test_the_scheduler_publishes_a_post_at_its_time(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient,
) -> None:
    """A scheduled post is invisible with no event until its time; the scheduler then
    publishes it once, within 2 s of its time, at the top of the list."""
    await new_stream(editor_client, "s")
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    post = await _submit(editor_client, "s", "The 20:00 recap", publish_at=due.isoformat())
    assert post["status"] == "scheduled" and post["seq"] is None
    assert _time(post["publish_at"]) == due.replace(microsecond=due.microsecond // 1000 * 1000)
    earlier = await new_post(editor_client, "s", "Meanwhile")
    assert await _public_ids(client, "s") == [earlier["id"]]
    upcoming = (await editor_client.get("/api/streams/s/posts?status=scheduled")).json()
    assert [p["id"] for p in upcoming["posts"]] == [post["id"]]
    log = await _wait_for_post(client, "s", post["id"], until=due + timedelta(seconds=8))
    created = [e for e in log if e["post"]["id"] == post["id"]]
    assert [e["op"] for e in created] == ["post.created"] and created[0]["seq"] == 2
    delay = (_time(created[0]["post"]["created_at"]) - due).total_seconds()
    print(f"scheduled post published {delay:.3f} s after its time")
    assert 0 <= delay < 2.0
    assert await _public_ids(client, "s") == [post["id"], earlier["id"]]
    await asyncio.sleep(1.0)  # further rounds publish nothing more
    assert len(await events(client, "s")) == 2


async def test_a_scheduled_post_is_rescheduled_or_published_now(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient,
) -> None:
    """PATCH publish_at moves a scheduled post (no event); approve publishes it now; a
    past time or null is a 422, and publish_at on a published post a 409."""
    await new_stream(editor_client, "s")
    post = await _submit(editor_client, "s", "Recap", publish_at=_at(60))
    later = _at(3600)
    moved = await editor_client.patch(f"/api/posts/{post['id']}", json={"publish_at": later})
    assert moved.status_code == 200, moved.text
    assert _time(moved.json()["publish_at"]) == _time(later).replace(
        microsecond=_time(later).microsecond // 1000 * 1000)
    for value in (_at(-1), None):
        bad = await editor_client.patch(f"/api/posts/{post['id']}", json={"publish_at": value})
        assert bad.status_code == 422, bad.text
    assert await events(client, "s") == []
    now = await editor_client.post(f"/api/posts/{post['id']}/approve")
    assert now.status_code == 200 and now.json()["seq"] == 1
    assert now.json()["status"] == "published" and now.json()["publish_at"] is None
    late = await editor_client.patch(f"/api/posts/{post['id']}", json={"publish_at": _at(60)})
    assert late.status_code == 409 and late.json()["error"]["code"] == "not_scheduled"
    assert [e["op"] for e in await events(client, "s")] == ["post.created"]


async def _wait_for_post(client: httpx.AsyncClient, slug: str, post_id: int, *,
                         until: datetime) -> list[dict[str, Any]]:
    """The stream's log once it has an event of the post (polled; fails after ``until``)."""
    while True:
        log = await events(client, slug)
        if any(e.get("post", {}).get("id") == post_id for e in log):
            return log
        assert datetime.now(UTC) < until, f"post {post_id} was not published by {until}"
        await asyncio.sleep(0.05)

