"""The desk's headline, tags and bylines and its people pages, without JavaScript, on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from bulletin.store.db import Database
from tests.conftest import EditorLogin
from tests.helpers import snapshot

from .test_desk import _form_stream, desk_client, field, sign_in


@pytest.fixture
async def desk(app: Starlette, editor: EditorLogin) -> AsyncIterator[Any]:
    """alice's browser, signed in, with its CSRF token as ``desk.csrf``."""
    async with desk_client(app) as client:
        client.csrf = await sign_in(client)  # type: ignore[attr-defined]
        yield client


async def _person(desk: Any, name: str, description: str = "") -> int:
    r = await desk.post("/editor/people", data={"csrf_token": desk.csrf, "name": name,
                                                "description": description})
    assert r.status_code == 303, r.text
    listed = (await desk.get("/api/people")).json()["people"]
    return int(next(p["id"] for p in listed if p["name"] == name))


async def test_people_are_added_and_changed_on_the_desk(desk: Any, db: Database) -> None:
    """/editor/people lists the directory and adds to it; a person's page saves changes;
    a refused form keeps what was typed and writes nothing."""
    empty = await desk.get("/editor/people")
    assert empty.status_code == 200 and "Nobody yet" in empty.text
    zoe = await _person(desk, "Zoe Mendes", "Reporter in Caracas")
    page = await desk.get("/editor/people")
    assert "Zoe Mendes" in page.text and "Reporter in Caracas" in page.text
    assert "can now sign posts" in page.text
    before = await snapshot(db)
    refused = await desk.post("/editor/people", data={
        "csrf_token": desk.csrf, "name": "", "description": "Kept words"})
    assert refused.status_code == 422 and "Kept words" in refused.text
    assert await snapshot(db) == before
    edit = await desk.get(f"/editor/people/{zoe}")
    assert 'value="Zoe Mendes"' in edit.text
    saved = await desk.post(f"/editor/people/{zoe}", data={
        "csrf_token": desk.csrf, "name": "Zoe Mendes", "description": "Correspondent",
        "photo": ""})
    assert saved.status_code == 303
    person = (await desk.get(f"/api/people/{zoe}")).json()
    assert person["description"] == "Correspondent"
    assert (await desk.get("/editor/people/999")).status_code == 404


async def test_the_compose_form_posts_headline_tags_and_bylines(desk: Any) -> None:
    """Without JavaScript the compose form's headline, comma-separated tags (capitals and
    # forgiven) and ticked bylines reach the post; the stream page lists them."""
    await _form_stream(desk, "vote")
    zoe = await _person(desk, "Zoe Mendes", "Reporter in Caracas")
    ana = await _person(desk, "Ana Ruiz")
    page = await desk.get("/editor/streams/vote")
    assert f'name="contributors" value="{zoe}"' in page.text
    # Two ticked bylines: the field twice, as a browser sends checkboxes.
    r = await desk.post("/editor/streams/vote/posts", data={
        "csrf_token": desk.csrf, "idempotency_key": field(page.text, "idempotency_key"),
        "body": "Turnout is high", "headline": "Turnout passes 60%",
        "tags": "Economy, #polls, ", "contributors": [str(ana), str(zoe)]})
    assert r.status_code == 303, r.text
    post = (await desk.get("/api/streams/vote/posts")).json()["posts"][0]
    assert post["headline"] == "Turnout passes 60%"
    assert post["tags"] == ["economy", "polls"]
    assert [c["name"] for c in post["contributors"]] == ["Ana Ruiz", "Zoe Mendes"]
    listed = (await desk.get("/editor/streams/vote")).text
    item = re.search(rf'<li class="post[^"]*" id="post-{post["id"]}".*?</li>', listed, re.S)
    assert item is not None
    assert "Turnout passes 60%" in item.group(0) and "#economy" in item.group(0)
    assert "for Ana Ruiz, Zoe Mendes" in item.group(0)


async def test_a_refused_tag_keeps_every_field_of_the_compose_form(
    desk: Any, db: Database,
) -> None:
    """A tag that cannot be one is refused with a message, and the text, headline, tags
    and bylines come back as typed; nothing is written."""
    await _form_stream(desk, "vote")
    zoe = await _person(desk, "Zoe Mendes")
    page = await desk.get("/editor/streams/vote")
    before = await snapshot(db)
    r = await desk.post("/editor/streams/vote/posts", data={
        "csrf_token": desk.csrf, "idempotency_key": field(page.text, "idempotency_key"),
        "body": "Kept text", "headline": "Kept headline", "tags": "a b",
        "contributors": str(zoe)})
    assert r.status_code == 422
    assert "Kept text" in r.text and 'value="Kept headline"' in r.text
    assert 'value="a b"' in r.text
    assert re.search(rf'name="contributors" value="{zoe}" checked', r.text)
    assert await snapshot(db) == before


async def test_the_edit_page_changes_headline_tags_and_bylines(desk: Any) -> None:
    """The no-JavaScript edit page shows the post's headline, tags and bylines and saves
    changes to them with the text."""
    await _form_stream(desk, "vote")
    zoe = await _person(desk, "Zoe Mendes")
    post = (await desk.post("/api/streams/vote/posts", json={
        "body": "Text", "headline": "Old", "tags": ["polls"]},
        headers={"X-CSRF-Token": desk.csrf})).json()
    page = await desk.get(f"/editor/posts/{post['id']}/edit")
    assert 'value="Old"' in page.text and 'value="polls"' in page.text
    r = await desk.post(f"/editor/posts/{post['id']}/edit", data={
        "csrf_token": desk.csrf, "body": "Text", "headline": "New", "tags": "polls, results",
        "contributors": str(zoe)})
    assert r.status_code == 303, r.text
    now = (await desk.get(f"/api/posts/{post['id']}")).json()
    assert (now["headline"], now["tags"], [c["id"] for c in now["contributors"]]) == \
        ("New", ["polls", "results"], [zoe])


async def test_a_contributors_desk_shows_only_what_they_may_do(
    app: Starlette, db: Database, editor: EditorLogin,
) -> None:
    """A contributor's desk has no Start a stream form, no Go live / End stream / details
    form on a story, and no Edit, Pin or Delete on published posts; their compose button
    submits for approval. An editor's desk has all of them."""
    from tests.conftest import make_editor

    await make_editor(db, "cora", role="contributor")
    async with desk_client(app) as alice:
        alice.csrf = await sign_in(alice)  # type: ignore[attr-defined]
        await _form_stream(alice, "vote")
        await alice.post("/api/streams/vote/posts", json={"body": "Published"},
                         headers={"X-CSRF-Token": alice.csrf})  # type: ignore[attr-defined]
        page = (await alice.get("/editor/streams/vote")).text
        assert 'data-action="pin"' in page and "End stream" in page
        assert 'id="details-heading"' in page
    async with desk_client(app) as cora:
        await sign_in(cora, "cora")
        streams = (await cora.get("/editor")).text
        assert 'id="new-stream"' not in streams
        page = (await cora.get("/editor/streams/vote")).text
        assert 'data-action="pin"' not in page and 'data-action="delete"' not in page
        assert "End stream" not in page and 'id="details-heading"' not in page
        assert "Submit for approval" in page
