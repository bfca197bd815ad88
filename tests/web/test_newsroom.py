"""Headlines, tags and bylines through the API and the reader's pages, on SQLite and
PostgreSQL: the people directory, the post's new fields as events, and the filters."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from bulletin.store import accounts
from bulletin.store.db import Database
from bulletin.store.models import Editor
from tests.conftest import EditorLogin, make_editor
from tests.helpers import events, new_post, new_stream, snapshot

from .test_media import field_photo, upload


async def person(client: httpx.AsyncClient, name: str, description: str = "",
                 **extra: Any) -> dict[str, Any]:
    r = await client.post("/api/people", json={"name": name, "description": description,
                                               **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


# --- the people directory ------------------------------------------------------------------


async def test_people_are_added_listed_and_changed_by_editors_only(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """POST /api/people is a 201 with the person; GET lists them by name; PATCH changes
    only what it names; anonymous callers get 401, a bad body 422, an unknown id 404."""
    photo = (await upload(editor_client, field_photo(800, 600))).json()
    zoe = await person(editor_client, "  Zoe Mendes ", "Reporter in Caracas", photo=photo["id"])
    assert zoe["name"] == "Zoe Mendes" and zoe["description"] == "Reporter in Caracas"
    assert zoe["photo"]["url"].startswith("/media/") and zoe["photo"]["width"] == 600
    ana = await person(editor_client, "Ana Ruiz")
    assert ana["photo"] is None
    listed = (await editor_client.get("/api/people")).json()["people"]
    assert [p["name"] for p in listed] == ["Ana Ruiz", "Zoe Mendes"]
    r = await editor_client.patch(f"/api/people/{zoe['id']}",
                                  json={"description": "Correspondent", "photo": None})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Zoe Mendes" and r.json()["description"] == "Correspondent"
    assert r.json()["photo"] is None
    assert (await editor_client.get(f"/api/people/{zoe['id']}")).json()["photo"] is None
    assert (await client.get("/api/people")).status_code == 401
    assert (await client.post("/api/people", json={"name": "X"})).status_code == 401
    for bad in ({"name": ""}, {"name": "x" * 101}, {"name": "A", "photo": "1"},
                {"name": "A", "extra": 1}):
        r = await editor_client.post("/api/people", json=bad)
        assert r.status_code == 422, bad
    r = await editor_client.post("/api/people", json={"name": "A", "photo": 999})
    assert r.status_code == 422 and r.json()["error"]["code"] == "media_not_found"
    r = await editor_client.patch(f"/api/people/{ana['id']}", json={"name": None})
    assert r.status_code == 422
    assert (await editor_client.get("/api/people/999")).status_code == 404
    assert (await editor_client.patch("/api/people/999", json={"name": "B"})).status_code \
        == 404
    assert len((await editor_client.get("/api/people")).json()["people"]) == 2


# --- the post's new fields -----------------------------------------------------------------


async def test_a_post_carries_its_headline_tags_and_bylines_in_its_event(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """Headline, tags (each once, in order) and contributors (the people's details, in
    order) are in the 201, in GET and in the post.created event; the signed-in author
    stays the author."""
    await new_stream(editor_client, "vote")
    zoe = await person(editor_client, "Zoe Mendes", "Reporter in Caracas")
    ana = await person(editor_client, "Ana Ruiz")
    created = await new_post(editor_client, "vote", "Turnout is **high**.",
                             headline="  Turnout\n passes   60% ", tags=["turnout", "polls",
                                                                          "turnout"],
                             contributors=[ana["id"], zoe["id"]])
    assert created["headline"] == "Turnout passes 60%"
    assert created["tags"] == ["turnout", "polls"]
    assert [(c["id"], c["name"], c["description"]) for c in created["contributors"]] == [
        (ana["id"], "Ana Ruiz", ""), (zoe["id"], "Zoe Mendes", "Reporter in Caracas")]
    assert created["author"]["name"] != "Zoe Mendes"
    got = (await client.get(f"/api/posts/{created['id']}")).json()
    assert {k: got[k] for k in ("headline", "tags", "contributors")} == \
        {k: created[k] for k in ("headline", "tags", "contributors")}
    event = (await events(client, "vote"))[-1]
    assert event["op"] == "post.created"
    assert event["post"]["headline"] == "Turnout passes 60%"
    assert event["post"]["tags"] == ["turnout", "polls"]
    plain = await new_post(editor_client, "vote", "No headline")
    assert plain["headline"] is None and plain["tags"] == [] and plain["contributors"] == []


async def test_bad_tags_headlines_and_bylines_are_refused_and_write_nothing(
    editor_client: httpx.AsyncClient, db: Database,
) -> None:
    """A tag that is not a short slug, more than 10 tags, a headline over 120 characters
    and a contributor not in the directory are each a 422 that changes nothing."""
    await new_stream(editor_client, "vote")
    await person(editor_client, "Zoe Mendes")
    before = await snapshot(db)
    for extra, code in (
        ({"tags": ["Economy"]}, "validation_error"),
        ({"tags": ["a b"]}, "validation_error"),
        ({"tags": ["x" * 33]}, "validation_error"),
        ({"tags": [f"t{i}" for i in range(11)]}, "validation_error"),
        ({"tags": "economy"}, "validation_error"),
        ({"headline": "h" * 121}, "validation_error"),
        ({"contributors": [12345]}, "person_not_found"),
        ({"contributors": ["1"]}, "validation_error"),
    ):
        r = await editor_client.post("/api/streams/vote/posts", json={"body": "x", **extra})
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["error"]["code"] == code, extra
    assert await snapshot(db) == before


async def test_changing_headline_tags_or_bylines_is_an_edit_restated_in_history(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """A PATCH of headline, tags or contributors is a new revision and one post.edited
    event; the earlier events carry the new state; the revision keeps the old fields.
    The same values again change nothing."""
    await new_stream(editor_client, "vote")
    zoe = await person(editor_client, "Zoe Mendes")
    post = await new_post(editor_client, "vote", "Polls close", tags=["polls"])
    r = await editor_client.patch(f"/api/posts/{post['id']}", json={
        "headline": "Polls have closed", "tags": ["polls", "results"],
        "contributors": [zoe["id"]]})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["revision"] == 2 and edited["body"] == "Polls close"
    assert edited["headline"] == "Polls have closed" and edited["tags"] == ["polls", "results"]
    assert [c["name"] for c in edited["contributors"]] == ["Zoe Mendes"]
    log = await events(client, "vote")
    assert [e["op"] for e in log[-2:]] == ["post.created", "post.edited"]
    assert all(e["post"]["headline"] == "Polls have closed" for e in log[-2:])
    again = await editor_client.patch(f"/api/posts/{post['id']}", json={
        "headline": "Polls have closed", "tags": ["polls", "results"]})
    assert again.json()["seq"] is None and again.json()["revision"] == 2
    history = (await editor_client.get(f"/api/posts/{post['id']}/revisions")).json()
    assert [(r["revision"], r["headline"], r["tags"], r["contributors"])
            for r in history["revisions"]] == [(1, None, ["polls"], [])]
    cleared = (await editor_client.patch(f"/api/posts/{post['id']}", json={
        "headline": "", "tags": [], "contributors": []})).json()
    assert cleared["headline"] is None and cleared["tags"] == [] and \
        cleared["contributors"] == [] and cleared["revision"] == 3


async def test_a_renamed_person_shows_in_posts_read_afterwards(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """Posts carry the directory's current details of their contributors when read."""
    await new_stream(editor_client, "vote")
    zoe = await person(editor_client, "Zoe Mendes")
    post = await new_post(editor_client, "vote", "Hello", contributors=[zoe["id"]])
    await editor_client.patch(f"/api/people/{zoe['id']}", json={"name": "Zoé Mendes"})
    got = (await client.get(f"/api/posts/{post['id']}")).json()
    assert got["contributors"][0]["name"] == "Zoé Mendes"


async def test_a_taken_down_photo_leaves_the_directory(
    editor_client: httpx.AsyncClient,
) -> None:
    """Taking a photo down takes it off the person it pictured."""
    photo = (await upload(editor_client, field_photo(800, 600))).json()
    zoe = await person(editor_client, "Zoe Mendes", photo=photo["id"])
    r = await editor_client.delete(f"/api/media/{photo['id']}")
    assert r.status_code == 200, r.text
    assert (await editor_client.get(f"/api/people/{zoe['id']}")).json()["photo"] is None


# --- filters -------------------------------------------------------------------------------


async def test_posts_filter_by_tag_and_by_key_events_with_paging(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """?tag= lists only posts with that tag (not those with a longer tag that contains
    it); ?pinned=true only key events; both together; next links keep the filter; a tag
    that is not a slug is a 400."""
    await new_stream(editor_client, "vote")
    ids = {}
    for name, tags, pinned in (("a", ["economy"], False), ("b", ["economy-jobs"], False),
                               ("c", ["economy", "jobs"], True), ("d", [], True),
                               ("e", ["economy"], False)):
        ids[name] = (await new_post(editor_client, "vote", name, tags=tags,
                                    pinned=pinned))["id"]

    async def listed(**params: Any) -> tuple[list[str], dict[str, Any]]:
        r = await client.get("/api/streams/vote/posts", params=params)
        assert r.status_code == 200, r.text
        return [p["body"] for p in r.json()["posts"]], r.json()

    assert (await listed(tag="economy"))[0] == ["e", "c", "a"]
    assert (await listed(pinned="true"))[0] == ["d", "c"]
    assert (await listed(tag="economy", pinned="true"))[0] == ["c"]
    assert (await listed(tag="nothing"))[0] == []
    assert (await listed(pinned="false"))[0] == ["e", "d", "c", "b", "a"]
    first, page = await listed(tag="economy", limit=2)
    assert first == ["e", "c"]
    assert "tag=economy" in page["links"]["next"]
    second = (await client.get(page["links"]["next"])).json()
    assert [p["body"] for p in second["posts"]] == ["a"]
    for bad in ({"tag": "Economy"}, {"tag": "a'b"}, {"pinned": "yes"}):
        r = await client.get("/api/streams/vote/posts", params=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter"


# --- the reader's pages --------------------------------------------------------------------


async def test_the_reader_page_shows_headlines_bylines_and_tag_links(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """The live page shows a post's headline, its contributors with their description,
    and its tags as links to the filtered page; the key events list and the JSON-LD use
    the headline, and the JSON-LD's author is the contributors."""
    await new_stream(editor_client, "vote")
    zoe = await person(editor_client, "Zoe Mendes", "Reporter in Caracas")
    await new_post(editor_client, "vote", "Long body text that is not the headline.",
                   headline="Turnout passes 60%", tags=["turnout"], pinned=True,
                   contributors=[zoe["id"]])
    page = (await client.get("/live/vote")).text
    assert "<h3 class=\"post-headline\"" in page and "Turnout passes 60%" in page
    assert "Zoe Mendes" in page and "Reporter in Caracas" in page
    assert 'href="/live/vote?tag=turnout"' in page
    key = re.search(r'<ol id="key-events-list">(.*?)</ol>', page, re.S)
    assert key is not None and "Turnout passes 60%" in key.group(1)
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>',
                                page, re.S).group(1))  # type: ignore[union-attr]
    update = data["liveBlogUpdate"][0]
    assert update["headline"] == "Turnout passes 60%"
    assert update["author"] == [{"@type": "Person", "name": "Zoe Mendes",
                                 "jobTitle": "Reporter in Caracas"}]


async def test_the_filtered_reader_page_works_without_javascript(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient,
) -> None:
    """/live/{slug}?tag=X and ?pinned=true list only matching posts, say which filter is
    on with a way back to every update, and page older matching posts with the filter
    kept; an unknown tag reads as an empty filtered list, a malformed one is ignored."""
    await new_stream(editor_client, "vote")
    await new_post(editor_client, "vote", "Jobs report out", tags=["economy"])
    await new_post(editor_client, "vote", "A rally downtown", tags=["campaign"])
    await new_post(editor_client, "vote", "Key moment", pinned=True)
    tagged = (await client.get("/live/vote", params={"tag": "economy"})).text
    assert "Jobs report out" in tagged and "A rally downtown" not in tagged
    assert 'data-tag="economy"' in tagged and 'href="/live/vote"' in tagged
    key = (await client.get("/live/vote", params={"pinned": "true"})).text
    assert "Key moment" in key.split('id="feed"')[1] and \
        "Jobs report out" not in key.split('id="feed"')[1]
    assert 'data-pinned="true"' in key
    assert re.search(r'<a href="/live/vote\?pinned=true" aria-current="page">', key)
    every = (await client.get("/live/vote")).text
    assert re.search(r'<a href="/live/vote" aria-current="page">', every)
    assert '<a href="/live/vote?pinned=true">' in every
    none = (await client.get("/live/vote", params={"tag": "weather"})).text
    assert "Jobs report out" not in none.split('id="feed"')[1]
    odd = await client.get("/live/vote", params={"tag": "<b>"})
    assert odd.status_code == 200 and "Jobs report out" in odd.text


async def test_contributors_and_stream_bound_tokens_cannot_change_the_directory(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient, db: Database,
    editor: EditorLogin,
) -> None:
    """Changing the people directory changes bylines in every story: a contributor gets
    403 forbidden_for_role, a token bound to one stream 403 stream_not_allowed; both may
    still read it and sign their posts with it."""
    zoe = await person(editor_client, "Zoe Mendes")
    cora = await make_editor(db, "cora", role="contributor")
    r = await client.post("/api/people", json={"name": "X"}, headers=cora.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_for_role"
    r = await client.patch(f"/api/people/{zoe['id']}", json={"name": "X"},
                           headers=cora.headers)
    assert r.status_code == 403
    assert (await client.get("/api/people", headers=cora.headers)).status_code == 200
    await new_stream(editor_client, "vote")
    async with db.write() as session:
        alice = await session.get(Editor, editor.editor_id)
        assert alice is not None
        _row, plain = await accounts.create_token(session, editor=alice, name="bound",
                                                  scope="write", streams=["vote"])
    r = await client.post("/api/people", json={"name": "X"},
                          headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "stream_not_allowed"
    assert [p["name"] for p in (await editor_client.get("/api/people")).json()["people"]] \
        == ["Zoe Mendes"]
