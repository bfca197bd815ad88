"""The desk's posts that wait, without JavaScript: a contributor's compose form submits
for approval and lists "Your posts awaiting approval" with the editor's note; an editor's
stream page lists "Awaiting approval" and "Upcoming", and its forms approve, send back,
schedule (a datetime-local time read as UTC, or with the script's explicit offset),
reschedule and cancel."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from bulletin.store.db import Database
from tests.conftest import EditorLogin
from tests.helpers import events, new_stream
from tests.web.test_desk import desk_client, sign_in
from tests.web.test_publishing import make_contributor


def _section(html: str, heading: str) -> str:
    """The queue section under ``heading`` ('' when the page has none)."""
    match = re.search(rf"<h2 id=\"\w+-heading\">{heading} <span.*?</section>", html, re.S)
    return match.group(0) if match else ""


async def test_a_contributors_post_goes_through_the_desks_queue(
    app: Starlette, db: Database, editor: EditorLogin, editor_client: httpx.AsyncClient,
) -> None:
    """The contributor's form submits (no event) into their own list; the editor sees it
    awaiting approval, sends it back with a note the contributor then sees, and approves
    it: one post.created, and it leaves both lists."""
    await new_stream(editor_client, "s")
    await make_contributor(db, "carol")
    async with desk_client(app) as carol, desk_client(app) as alice:
        carol_csrf = await sign_in(carol, "carol")
        alice_csrf = await sign_in(alice, "alice")
        page = (await carol.get("/editor/streams/s")).text
        assert "Submit for approval" in page and 'name="publish_at_local"' not in page
        sent = await carol.post("/editor/streams/s/posts", data={
            "csrf_token": carol_csrf, "body": "Crowds at the *north* gate",
            "idempotency_key": "k1"})
        assert sent.status_code == 303 and sent.headers["location"].endswith("#queue")
        assert await events(editor_client, "s") == []
        mine = _section((await carol.get("/editor/streams/s")).text,
                        "Your posts awaiting approval")
        assert "Crowds at the <em>north</em> gate" in mine and "Approve" not in mine
        queue = _section((await alice.get("/editor/streams/s")).text, "Awaiting approval")
        post_id = int(re.search(r'id="waiting-(\d+)"', queue).group(1))  # type: ignore[union-attr]
        assert "Approve and publish" in queue and "Send back with a note" in queue
        back = await alice.post(f"/editor/posts/{post_id}/send-back", data={
            "csrf_token": alice_csrf, "note": "Which gate? Check with police."})
        assert back.status_code == 303
        mine = _section((await carol.get("/editor/streams/s")).text,
                        "Your posts awaiting approval")
        assert "Sent back" in mine and "Which gate? Check with police." in mine
        edited = await carol.post(f"/editor/posts/{post_id}/edit", data={
            "csrf_token": carol_csrf, "body": "Crowds at the north gate, police say"})
        assert edited.status_code == 303
        refused = await carol.post(f"/editor/posts/{post_id}/approve",
                                   data={"csrf_token": carol_csrf})
        assert refused.status_code == 403
        approved = await alice.post(f"/editor/posts/{post_id}/approve",
                                    data={"csrf_token": alice_csrf})
        assert approved.status_code == 303
        log = await events(editor_client, "s")
        assert [(e["op"], e["post"]["body"]) for e in log] == [
            ("post.created", "Crowds at the north gate, police say")]
        page = (await alice.get("/editor/streams/s")).text
        assert _section(page, "Awaiting approval") == "" and f'id="post-{post_id}"' in page


async def test_an_editor_schedules_reschedules_and_cancels_on_the_desk(
    app: Starlette, editor: EditorLogin, editor_client: httpx.AsyncClient,
) -> None:
    """Without the script the time field is read as UTC; the script's hidden field sends
    an explicit offset; a past time is refused with the text kept; the upcoming list
    shows each time and reschedules and cancels without an event."""
    async with desk_client(app) as desk:
        await _schedule_on_the_desk(desk, await sign_in(desk), editor_client)


async def _schedule_on_the_desk(desk: httpx.AsyncClient, csrf: str,
                                editor_client: httpx.AsyncClient) -> None:
    await new_stream(editor_client, "s")
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    local = at.strftime("%Y-%m-%dT%H:%M")
    first = await desk.post("/editor/streams/s/posts", data={
        "csrf_token": csrf, "body": "The 20:00 recap", "publish_at_local": local,
        "publish_at": "", "idempotency_key": "a"})
    assert first.status_code == 303, first.text
    offset = (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:00+01:00")
    second = await desk.post("/editor/streams/s/posts", data={
        "csrf_token": csrf, "body": "Second recap", "publish_at_local": "ignored",
        "publish_at": offset, "idempotency_key": "b"})
    assert second.status_code == 303, second.text
    past = await desk.post("/editor/streams/s/posts", data={
        "csrf_token": csrf, "body": "Too late", "idempotency_key": "c",
        "publish_at_local": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")})
    assert past.status_code == 422 and "Too late" in past.text and "future" in past.text
    upcoming = (await editor_client.get("/api/streams/s/posts?status=scheduled")).json()["posts"]
    assert sorted(p["publish_at"] for p in upcoming) == [
        at.strftime("%Y-%m-%dT%H:%M:00.000Z")] * 2
    page = _section((await desk.get("/editor/streams/s")).text, "Upcoming")
    assert page.index("The 20:00 recap") < page.index("Second recap")
    assert at.strftime("%H:%M UTC") in page and "Publish now" in page
    first_id, second_id = sorted(p["id"] for p in upcoming)
    later = (at + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    moved = await desk.post(f"/editor/posts/{first_id}/schedule", data={
        "csrf_token": csrf, "publish_at_local": later, "publish_at": ""})
    assert moved.status_code == 303
    got = (await editor_client.get(f"/api/posts/{first_id}")).json()
    assert got["publish_at"] == f"{later}:00.000Z"
    cancelled = await desk.post(f"/editor/posts/{second_id}/delete", data={"csrf_token": csrf})
    assert cancelled.status_code == 303
    assert [p["id"] for p in (await editor_client.get(
        "/api/streams/s/posts?status=scheduled")).json()["posts"]] == [first_id]
    assert await events(editor_client, "s") == []
