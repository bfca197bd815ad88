"""Taking a photo down (a victim's face, a legal order): out of every post and revision,
its files out of storage, its URLs 410 Gone; a story's photos listed; an upload retried
with its Idempotency-Key made once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import func, select
from starlette.applications import Starlette

from bulletin.settings import Settings
from bulletin.store.db import Database
from bulletin.store.media import MediaUnavailable
from bulletin.store.models import Event, Media

from .test_desk import desk_client, sign_in
from .test_media import field_photo, media_dir, stored, upload
from .test_post_photos import live_story


@pytest.fixture
async def desk(app: Starlette, editor: Any) -> AsyncIterator[httpx.AsyncClient]:
    """alice's browser on the desk, signed in; its CSRF token as ``desk.csrf``."""
    async with desk_client(app) as browser:
        browser.csrf = await sign_in(browser)  # type: ignore[attr-defined]
        yield browser


async def post_with(editor_client: httpx.AsyncClient, slug: str, body: str,
                    *media: dict[str, Any]) -> dict[str, Any]:
    r = await editor_client.post(f"/api/streams/{slug}/posts", json={
        "body": body, "media": [{"id": m["id"], "alt": f"alt {m['id']}"} for m in media]})
    assert r.status_code == 201, r.text
    post: dict[str, Any] = r.json()
    return post


async def test_a_take_down_removes_the_photo_everywhere_and_its_urls_answer_410(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient, db: Database,
        settings: Settings) -> None:
    await live_story(editor_client, "march")
    await live_story(editor_client, "evening")
    face = (await upload(editor_client, field_photo(1200, 800))).json()
    # The same bytes uploaded again share the files: both go down.
    again = (await upload(editor_client, field_photo(1200, 800))).json()
    other = (await upload(editor_client, field_photo(900, 700))).json()
    assert again["id"] != face["id"] and again["url"] == face["url"]
    first = await post_with(editor_client, "march", "The crowd at the square.", face, other)
    # Corrected once while it still showed the photo: the revision keeps what it showed.
    r = await editor_client.patch(f"/api/posts/{first['id']}",
                                  json={"body": "The crowd at the square, at noon."})
    assert r.status_code == 200, r.text
    second = await post_with(editor_client, "evening", "Later, the same place.", again)
    untouched = await post_with(editor_client, "march", "Only the other photo.", other)
    seq_before = (await client.get("/api/streams/march")).json()["seq"]

    r = await editor_client.delete(f"/api/media/{face['id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["taken_down_at"] is not None and body["url"] is None and body["variants"] == []
    assert body["posts_edited"] == sorted([first["id"], second["id"]])
    assert body["files_removed"] == len(face["variants"])

    # Every URL of the photo answers 410, the other photo's still serve.
    for variant in face["variants"]:
        gone = await client.get(variant["url"])
        assert gone.status_code == 410, variant
        assert gone.json()["error"]["code"] == "media_taken_down"
    for variant in other["variants"]:
        assert (await client.get(variant["url"])).status_code == 200
    names = {v["url"].rsplit("/", 1)[1] for v in face["variants"]}
    assert not names & set(stored_files(settings))

    # The posts no longer show it: their JSON, the new post.edited event, every earlier
    # event (a replay never brings the photo back) and the revisions.
    shown = (await client.get(f"/api/posts/{first['id']}")).json()
    assert [m["id"] for m in shown["media"]] == [other["id"]]
    assert shown["revision"] == 3
    assert (await client.get(f"/api/posts/{second['id']}")).json()["media"] == []
    events = (await client.get("/api/streams/march/events")).json()["events"]
    assert [e["op"] for e in events if e["seq"] > seq_before] == ["post.edited"]
    assert events[-1]["post"]["id"] == first["id"]
    evening = (await client.get("/api/streams/evening/events")).json()["events"]
    assert evening[-1]["op"] == "post.edited" and evening[-1]["post"]["media"] == []
    async with db.read() as session:
        payloads = (await session.exec(select(Event.payload))).all()
    assert not any(face["variants"][0]["url"] in p for p in payloads)
    revisions = (await editor_client.get(f"/api/posts/{first['id']}/revisions")).json()
    assert [[m["id"] for m in r["media"]] for r in revisions["revisions"]] == [
        [other["id"]], [other["id"]]]
    assert (await client.get(f"/api/posts/{untouched['id']}")).json()["revision"] == 1

    # Both uploads of those bytes are down; neither can be shown again, nor uploaded again.
    for media_id in (face["id"], again["id"]):
        described = (await editor_client.get(f"/api/media/{media_id}")).json()
        assert described["taken_down_at"] is not None
    r = await editor_client.post("/api/streams/march/posts", json={
        "body": "Again?", "media": [{"id": again["id"], "alt": "a face"}]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "media_taken_down"
    rows_before = await stored(db, settings)
    r = await upload(editor_client, field_photo(1200, 800))
    assert r.status_code == 409 and r.json()["error"]["code"] == "media_taken_down"
    assert await stored(db, settings) == rows_before

    # The reader page draws no figure for it.
    page = (await client.get("/live/evening")).text
    assert face["variants"][0]["url"] not in page


def stored_files(settings: Settings) -> list[str]:
    folder = media_dir(settings)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


async def test_a_take_down_is_for_editors_and_an_unknown_photo_is_404(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    face = (await upload(editor_client, field_photo())).json()
    assert (await client.delete(f"/api/media/{face['id']}")).status_code == 401
    assert (await client.get(face["url"])).status_code == 200
    r = await editor_client.delete("/api/media/999999")
    assert r.status_code == 404
    assert (await client.get("/media/" + "0" * 32 + "-480.webp")).status_code == 404


async def test_when_storage_fails_the_photo_is_already_out_and_a_retry_removes_files(
        app: Starlette, editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
        settings: Settings) -> None:
    await live_story(editor_client, "march")
    face = (await upload(editor_client, field_photo())).json()
    post = await post_with(editor_client, "march", "The square.", face)
    store = app.state.services.media
    real_delete = store.delete

    async def unreachable(name: str) -> None:
        raise MediaUnavailable("storage is down")

    store.delete = unreachable
    try:
        r = await editor_client.delete(f"/api/media/{face['id']}")
    finally:
        store.delete = real_delete
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "media_storage_unavailable"
    assert r.json()["error"]["details"]["files_left"] == len(face["variants"])
    assert (await client.get(f"/api/posts/{post['id']}")).json()["media"] == []
    assert stored_files(settings)  # the files are still there...
    r = await editor_client.delete(f"/api/media/{face['id']}")  # ...until the retry
    assert r.status_code == 200, r.text
    assert r.json()["posts_edited"] == []
    assert stored_files(settings) == []
    assert (await client.get(face["url"])).status_code == 410


async def test_an_upload_while_storage_is_down_is_503_and_leaves_nothing(
        app: Starlette, editor_client: httpx.AsyncClient, db: Database,
        settings: Settings) -> None:
    store = app.state.services.media
    real_put = store.put
    calls = 0

    async def flaky(name: str, data: bytes, content_type: str) -> None:
        nonlocal calls
        calls += 1
        if calls > 2:  # some files are written, then storage goes away
            raise MediaUnavailable("storage is down")
        await real_put(name, data, content_type)

    store.put = flaky
    try:
        r = await upload(editor_client, field_photo())
    finally:
        store.put = real_put
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "media_storage_unavailable"
    assert r.headers["retry-after"] == "2"
    assert await stored(db, settings) == (0, [])


async def test_a_storys_photos_are_listed_with_the_posts_showing_them(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client, "march")
    await live_story(editor_client, "evening")
    for_march = (await upload(editor_client, field_photo(1000, 800), stream="march")).json()
    shown = (await upload(editor_client, field_photo(900, 800))).json()
    elsewhere = (await upload(editor_client, field_photo(800, 800), stream="evening")).json()
    post = await post_with(editor_client, "march", "The square.", shown)
    r = await editor_client.get("/api/streams/march/media")
    assert r.status_code == 200, r.text
    listed = r.json()["media"]
    assert [(m["id"], m["posts"]) for m in listed] == [
        (shown["id"], [post["id"]]), (for_march["id"], [])]
    assert elsewhere["id"] not in [m["id"] for m in listed]
    assert (await client.get("/api/streams/march/media")).status_code == 401
    r = await upload(editor_client, field_photo(700, 800), stream="nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "stream_not_found"


async def test_an_upload_retried_with_its_key_is_one_photo(
        editor_client: httpx.AsyncClient, db: Database) -> None:
    data = field_photo()
    headers = {"Idempotency-Key": "desk-photo-1"}
    first = await editor_client.post("/api/media", headers=headers, data={"alt": "A march"},
                                     files={"file": ("a.jpg", data, "image/jpeg")})
    # The retry's multipart framing differs (another boundary, another file name).
    retry = await editor_client.post("/api/media", headers=headers, data={"alt": "A march"},
                                     files={"file": ("IMG_0001.jpg", data, "image/jpeg")})
    assert first.status_code == retry.status_code == 201
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json()["id"] == first.json()["id"]
    async with db.read() as session:
        assert (await session.exec(select(func.count()).select_from(Media))).one() == 1
    other = await editor_client.post("/api/media", headers=headers,
                                     files={"file": ("b.jpg", field_photo(600, 500),
                                                     "image/jpeg")})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


async def test_the_desk_lists_a_storys_photos_and_takes_one_down_after_asking(
        desk: Any, editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client, "march")
    face = (await upload(editor_client, field_photo(1000, 800), alt="A face")).json()
    kept = (await upload(editor_client, field_photo(900, 800), stream="march")).json()
    post = await post_with(editor_client, "march", "The square.", face)

    page = await desk.get("/editor/streams/march/photos")
    assert page.status_code == 200
    assert f'id="photo-{face["id"]}"' in page.text and f'id="photo-{kept["id"]}"' in page.text
    assert f'href="/editor/streams/march#post-{post["id"]}"' in page.text
    assert "In no post" in page.text
    confirm = await desk.get(f"/editor/media/{face['id']}/take-down?stream=march")
    assert confirm.status_code == 200
    assert "It leaves 1 post" in confirm.text and "410 Gone" in confirm.text
    assert (await client.get(face["url"])).status_code == 200  # asking changed nothing

    # Without the CSRF token the form is refused and nothing happens.
    refused = await desk.post(f"/editor/media/{face['id']}/take-down", data={"stream": "march"})
    assert refused.status_code == 403
    assert (await client.get(face["url"])).status_code == 200

    done = await desk.post(f"/editor/media/{face['id']}/take-down",
                           data={"csrf_token": desk.csrf, "stream": "march"})
    assert done.status_code == 303
    assert done.headers["location"] == "/editor/streams/march/photos"
    after = await desk.get("/editor/streams/march/photos")
    assert f"Photo {face['id']} taken down: removed from 1 post" in after.text
    assert "Taken down" in after.text
    assert (await client.get(face["url"])).status_code == 410
    assert (await client.get(f"/api/posts/{post['id']}")).json()["media"] == []


async def test_the_desk_photos_page_is_for_signed_in_editors(
        client: httpx.AsyncClient, editor_client: httpx.AsyncClient) -> None:
    await live_story(editor_client, "march")
    r = await client.get("/editor/streams/march/photos")
    assert r.status_code == 303 and r.headers["location"].startswith("/editor/login")


async def test_a_post_that_was_only_the_photo_is_deleted_by_its_take_down(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client, "march")
    face = (await upload(editor_client, field_photo())).json()
    r = await editor_client.post("/api/streams/march/posts", json={
        "body": "", "media": [{"id": face["id"], "alt": "A face in the crowd"}]})
    assert r.status_code == 201, r.text
    post = r.json()
    done = await editor_client.delete(f"/api/media/{face['id']}")
    assert done.status_code == 200 and done.json()["posts_edited"] == [post["id"]]
    assert (await client.get(f"/api/posts/{post['id']}")).status_code == 404
    events = (await client.get("/api/streams/march/events")).json()["events"]
    assert [e["op"] for e in events] == ["post.created", "post.deleted"]
    assert all(e["post"]["media"] == [] for e in events)
