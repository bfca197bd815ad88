"""Drafts on the server: each editor's own draft per stream, saved, loaded and deleted
through /api/streams/{slug}/draft, hidden from other editors, validated like posts, kept
safe between two devices by its version, and deleted by the post that publishes it; on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bulletin.store.db import Database
from tests.conftest import EditorLogin, make_editor
from tests.helpers import new_post, new_stream, snapshot

from .test_desk import desk_client, sign_in
from .test_media import field_photo, upload

URL = "/api/streams/election/draft"


def draft(body: str = "Turnout is up in the north", **extra: Any) -> dict[str, Any]:
    return {"body": body, "key": "draft-key-1", **extra}


@pytest.fixture
async def desk(app: Starlette, editor: EditorLogin) -> Any:
    """alice's browser, signed in to the desk, with its CSRF token as ``desk.csrf``."""
    async with desk_client(app) as browser:
        browser.csrf = await sign_in(browser)  # type: ignore[attr-defined]
        yield browser


@pytest.fixture
async def other_client(app: Starlette, db: Database) -> Any:
    """A second editor's API client."""
    other = await make_editor(db, "grace")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver", headers=other.headers) as c:
        yield c


async def test_a_saved_draft_comes_back_and_goes_away(
        editor_client: httpx.AsyncClient) -> None:
    """PUT saves every field as version 1, GET returns it, DELETE removes it (204, then
    404 draft_not_found), and a second DELETE is a 204 too."""
    await new_stream(editor_client)
    assert (await editor_client.get(URL)).json()["error"]["code"] == "draft_not_found"
    saved = await editor_client.put(URL, json=draft(
        pinned=True, headline="Turnout", tags=["turnout", "north"], base=None))
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["version"] == 1 and body["updated_at"].endswith("Z")
    assert (body["body"], body["pinned"], body["headline"], body["tags"], body["key"]) == (
        "Turnout is up in the north", True, "Turnout", ["turnout", "north"], "draft-key-1")
    assert body["media"] == [] and body["uploading"] == [] and body["stream"] == "election"
    loaded = await editor_client.get(URL)
    assert loaded.status_code == 200 and loaded.json() == body
    again = await editor_client.put(URL, json=draft("Turnout is up", base=1))
    assert again.json()["version"] == 2 and again.json()["body"] == "Turnout is up"
    assert (await editor_client.delete(URL)).status_code == 204
    gone = await editor_client.get(URL)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "draft_not_found"
    assert (await editor_client.delete(URL)).status_code == 204


async def test_another_editor_never_sees_or_changes_the_draft(
        editor_client: httpx.AsyncClient, other_client: httpx.AsyncClient,
        client: httpx.AsyncClient) -> None:
    """A second editor's GET is a 404, their PUT makes a draft of their own, their DELETE
    leaves the first editor's; anonymous callers are a 401."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft("Ada's scoop"))
    assert (await other_client.get(URL)).status_code == 404
    assert (await other_client.delete(URL)).status_code == 204
    mine = await other_client.put(URL, json=draft("Grace's note", key="grace-key", base=None))
    assert mine.status_code == 200 and mine.json()["version"] == 1
    assert (await editor_client.get(URL)).json()["body"] == "Ada's scoop"
    assert (await other_client.get(URL)).json()["body"] == "Grace's note"
    assert (await client.get(URL)).status_code == 401
    assert (await client.put(URL, json=draft())).status_code == 401


async def test_a_draft_of_an_unknown_stream_is_a_404(editor_client: httpx.AsyncClient) -> None:
    """No stream, no draft: 404 stream_not_found for GET, PUT and DELETE."""
    for response in [await editor_client.get("/api/streams/nowhere/draft"),
                     await editor_client.put("/api/streams/nowhere/draft", json=draft()),
                     await editor_client.delete("/api/streams/nowhere/draft")]:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "stream_not_found"


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"body": "x" * 20_001}, 422, "post_too_long"),
    ({"key": ""}, 422, "validation_error"),
    ({"key": "has space"}, 422, "validation_error"),
    ({"tags": ["Not A Tag"]}, 422, "validation_error"),
    ({"headline": "h" * 121}, 422, "validation_error"),
    ({"media": [{"id": 1, "alt": ""}] * 21}, 422, "validation_error"),
    ({"media": [{"id": 999, "alt": ""}]}, 422, "media_not_found"),
    ({"uploading": ["a.jpg"] * 21}, 422, "validation_error"),
    ({"contributors": [12345]}, 422, "person_not_found"),
    ({"pinned": "yes"}, 422, "validation_error"),
    ({"surprise": 1}, 422, "validation_error"),
    ({"base": 0}, 422, "validation_error"),
    ({"body": "nul \x00 here"}, 422, "validation_error"),
])
async def test_bad_drafts_are_refused_and_write_nothing(
        editor_client: httpx.AsyncClient, db: Database, change: dict[str, Any], status: int,
        code: str) -> None:
    """Each wrong field is refused with a clear code, and the stored draft stays as it was."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft("Kept"))
    before = await snapshot(db)
    response = await editor_client.put(URL, json=draft() | change)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert await snapshot(db) == before
    assert (await editor_client.get(URL)).json()["body"] == "Kept"


async def test_photos_and_uploads_count_together_and_bad_bodies_are_refused(
        editor_client: httpx.AsyncClient, db: Database) -> None:
    """Photos uploaded plus photos uploading are at most 20; a body that is not JSON is a
    400, one over the byte limit a 413, and neither writes anything."""
    await new_stream(editor_client)
    before = await snapshot(db)
    many = draft(media=[{"id": 1, "alt": ""}] * 10, uploading=["a.jpg"] * 11)
    response = await editor_client.put(URL, json=many)
    assert response.status_code == 422
    assert "at most 20 photos" in response.json()["error"]["message"]
    bad = await editor_client.put(URL, content=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    huge = await editor_client.put(URL, json=draft("x" * 70_000))
    assert huge.status_code == 413
    assert await snapshot(db) == before


async def test_a_draft_keeps_photo_references_and_shows_their_files(
        editor_client: httpx.AsyncClient) -> None:
    """A draft stores which photos and their words (alt may still be empty), names the
    ones still uploading, and shows each uploaded photo with its files' URLs; a photo taken
    down since is left out."""
    await new_stream(editor_client)
    first = (await upload(editor_client, field_photo(800, 600))).json()
    second = (await upload(editor_client, field_photo(640, 480))).json()
    saved = await editor_client.put(URL, json=draft(
        media=[{"id": first["id"], "alt": "", "caption": "The queue", "credit": "AP"},
               {"id": second["id"], "alt": "A ballot box"}],
        uploading=["IMG_0042.HEIC"]))
    assert saved.status_code == 200, saved.text
    photos = saved.json()["media"]
    assert [(p["id"], p["alt"], p["caption"], p["credit"]) for p in photos] == [
        (first["id"], "", "The queue", "AP"), (second["id"], "A ballot box", "", "")]
    assert photos[0]["variants"] and photos[0]["url"].startswith("/media/")
    assert saved.json()["uploading"] == ["IMG_0042.HEIC"]
    assert (await editor_client.delete(f"/api/media/{first['id']}")).status_code == 200
    loaded = (await editor_client.get(URL)).json()
    assert [p["id"] for p in loaded["media"]] == [second["id"]]
    refused = await editor_client.put(URL, json=draft(media=[{"id": first["id"], "alt": ""}]))
    assert refused.json()["error"]["code"] == "media_taken_down"


async def test_a_save_from_an_older_version_is_refused_with_the_newer_draft(
        editor_client: httpx.AsyncClient, db: Database) -> None:
    """Two devices: the one that saved from version 1 after the other saved version 2 gets
    a 412 draft_changed carrying version 2, and version 2 is kept. Without base, a save
    overwrites; base null over a stored draft is stale too."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft("From the laptop", base=None))
    phone = await editor_client.put(URL, json=draft("From the phone", base=1))
    assert phone.json()["version"] == 2
    before = await snapshot(db)
    laptop = await editor_client.put(URL, json=draft("Laptop again", base=1))
    assert laptop.status_code == 412
    error = laptop.json()["error"]
    assert error["code"] == "draft_changed"
    assert error["details"]["draft"]["body"] == "From the phone"
    assert error["details"]["draft"]["version"] == 2
    fresh = await editor_client.put(URL, json=draft("A new one", base=None))
    assert fresh.status_code == 412
    assert await snapshot(db) == before
    overwrite = await editor_client.put(URL, json=draft("Last write wins"))
    assert overwrite.status_code == 200 and overwrite.json()["version"] == 3


async def test_a_save_after_the_draft_was_deleted_elsewhere_is_refused(
        editor_client: httpx.AsyncClient) -> None:
    """A save from version 1 after another device deleted the draft is a 412 whose
    details say there is no draft (null); it does not bring the draft back."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft(base=None))
    await editor_client.delete(URL)
    late = await editor_client.put(URL, json=draft("Still typing", base=1))
    assert late.status_code == 412 and late.json()["error"]["details"] == {"draft": None}
    assert (await editor_client.get(URL)).status_code == 404


async def test_publishing_with_the_drafts_key_deletes_it(
        editor_client: httpx.AsyncClient, db: Database) -> None:
    """A post made with the draft's key as Idempotency-Key deletes the draft in its own
    transaction; a post with another key leaves it; a later save of the published draft is
    a 409 draft_posted that writes nothing."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft("The result", key="k-draft"))
    await new_post(editor_client, "election", "Something else")
    other = await editor_client.post("/api/streams/election/posts", json={"body": "x"},
                                     headers={"Idempotency-Key": "another-key"})
    assert other.status_code == 201
    assert (await editor_client.get(URL)).status_code == 200
    posted = await editor_client.post("/api/streams/election/posts",
                                      json={"body": "The result"},
                                      headers={"Idempotency-Key": "k-draft"})
    assert posted.status_code == 201
    assert (await editor_client.get(URL)).status_code == 404
    before = await snapshot(db)
    late = await editor_client.put(URL, json=draft("The result!", key="k-draft"))
    assert late.status_code == 409 and late.json()["error"]["code"] == "draft_posted"
    assert await snapshot(db) == before


async def test_another_editors_post_with_the_same_key_leaves_the_draft(
        editor_client: httpx.AsyncClient, other_client: httpx.AsyncClient) -> None:
    """Keys are per editor: another editor posting with the same key deletes nothing of
    the first editor's."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft(key="shared"))
    r = await other_client.post("/api/streams/election/posts", json={"body": "Mine"},
                                headers={"Idempotency-Key": "shared"})
    assert r.status_code == 201
    assert (await editor_client.get(URL)).status_code == 200


async def test_the_desk_form_post_with_the_drafts_key_deletes_it(
        desk: Any, editor_client: httpx.AsyncClient) -> None:
    """The no-JavaScript compose form, posting with the draft's key, deletes the draft;
    the desk's session (with its CSRF token) saves drafts as the API token does."""
    await new_stream(editor_client)
    refused = await desk.put(URL, json=draft(key="form-key"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    saved = await desk.put(URL, json=draft(key="form-key"), headers={"X-CSRF-Token": desk.csrf})
    assert saved.status_code == 200, saved.text
    assert (await editor_client.get(URL)).json()["key"] == "form-key"
    form = await desk.post("/editor/streams/election/posts", data={
        "body": "Posted without JavaScript", "idempotency_key": "form-key",
        "csrf_token": desk.csrf})
    assert form.status_code == 303, form.text
    assert (await desk.get(URL)).status_code == 404


async def test_the_draft_matches_its_documented_schema(editor_client: httpx.AsyncClient) -> None:
    """A saved draft with a photo validates against the OpenAPI document's Draft, and the
    412's details against Draft too."""
    import jsonschema

    await new_stream(editor_client)
    media = (await upload(editor_client, field_photo(640, 480))).json()
    saved = (await editor_client.put(URL, json=draft(
        media=[{"id": media["id"], "alt": ""}], uploading=["b.jpg"]))).json()
    stale = (await editor_client.put(URL, json=draft(base=None))).json()
    schemas = (await editor_client.get("/api/openapi.json")).json()["components"]["schemas"]
    root = {"components": {"schemas": schemas}, "$ref": "#/components/schemas/Draft"}
    jsonschema.validate(saved, root)
    jsonschema.validate(stale["error"]["details"]["draft"], root)
    jsonschema.validate({"body": "x", "key": "k", "base": None, "media": [{"id": 1}]},
                        {"components": {"schemas": schemas},
                         "$ref": "#/components/schemas/DraftSave"})


async def test_two_first_saves_at_once_make_one_draft(editor_client: httpx.AsyncClient) -> None:
    """Two devices saving a first draft at the same moment: one is saved as version 1,
    the other is a 412 with it (never a 500, never two drafts); ten overwrites at once
    count up to version 11."""
    await new_stream(editor_client)
    answers = await asyncio.gather(
        editor_client.put(URL, json=draft("From the laptop", base=None)),
        editor_client.put(URL, json=draft("From the phone", base=None)))
    assert sorted(a.status_code for a in answers) == [200, 412]
    saved = next(a for a in answers if a.status_code == 200).json()
    refused = next(a for a in answers if a.status_code == 412).json()
    assert saved["version"] == 1
    assert refused["error"]["details"]["draft"]["body"] == saved["body"]
    await asyncio.gather(*[editor_client.put(URL, json=draft(f"v{i}")) for i in range(10)])
    assert (await editor_client.get(URL)).json()["version"] == 11


async def test_another_sites_page_cannot_read_the_draft_through_the_cookie(
        desk: Any, editor_client: httpx.AsyncClient) -> None:
    """With the desk's cookie but another site's Origin, the draft is a 401, as if signed
    out: no other page can read an editor's draft through their browser."""
    await new_stream(editor_client)
    await editor_client.put(URL, json=draft("Embargoed until 22:00"))
    assert (await desk.get(URL)).json()["body"] == "Embargoed until 22:00"
    other = await desk.get(URL, headers={"Origin": "https://elsewhere.example"})
    assert other.status_code == 401
    assert "Embargoed" not in other.text
