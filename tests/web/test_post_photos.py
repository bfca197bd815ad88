"""Photos in posts: attached by id with alt text, carried in the post's JSON and events,
drawn as responsive figures on the reader pages, and named in the share metadata."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import httpx
from sqlmodel import func, select

from bulletin.store.db import Database
from bulletin.store.models import Event, Post

from .test_media import field_photo, upload


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def all(self, tag: str, **having: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags
                if t == tag and all(a.get(k) == v for k, v in having.items())]


async def live_story(editor_client: httpx.AsyncClient, slug: str = "march") -> None:
    r = await editor_client.post("/api/streams", json={
        "slug": slug, "title": "The march on Miraflores", "status": "live"})
    assert r.status_code == 201, r.text


async def photo(editor_client: httpx.AsyncClient) -> dict[str, Any]:
    r = await upload(editor_client, field_photo(2000, 1500))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        posts = (await session.exec(select(func.count()).select_from(Post))).one()
        events = (await session.exec(select(func.count()).select_from(Event))).one()
    return posts, events


async def test_a_post_carries_its_photos_in_its_json_and_its_event(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client)
    media = await photo(editor_client)
    r = await editor_client.post("/api/streams/march/posts", json={
        "body": "Armoured vehicles drive into the crowd.",
        "media": [{"id": media["id"], "alt": " Vehicles among marchers ",
                   "caption": "Avenida Urdaneta", "credit": "Jane Reporter / Bulletin"}]})
    assert r.status_code == 201, r.text
    shown = r.json()["media"]
    assert len(shown) == 1
    assert shown[0]["id"] == media["id"]
    assert shown[0]["alt"] == "Vehicles among marchers"
    assert shown[0]["caption"] == "Avenida Urdaneta"
    assert shown[0]["credit"] == "Jane Reporter / Bulletin"
    assert (shown[0]["width"], shown[0]["height"]) == (1500, 2000)
    assert shown[0]["variants"] == media["variants"]
    events = (await client.get("/api/streams/march/events")).json()["events"]
    assert events[-1]["op"] == "post.created"
    assert events[-1]["post"]["media"] == shown
    for variant in shown[0]["variants"]:
        assert (await client.get(variant["url"])).status_code == 200


async def test_alt_text_is_required_and_a_refused_post_writes_nothing(
        editor_client: httpx.AsyncClient, db: Database) -> None:
    await live_story(editor_client)
    media = await photo(editor_client)
    before = await counts(db)
    for item, code in [({"id": media["id"]}, "validation_error"),
                       ({"id": media["id"], "alt": "   "}, "validation_error"),
                       ({"id": media["id"], "alt": "x" * 1001}, "validation_error"),
                       ({"id": 0, "alt": "A photo"}, "validation_error"),
                       ({"id": media["id"] + 1000, "alt": "A photo"}, "media_not_found"),
                       ({"id": media["id"], "alt": "A photo", "url": "https://x"},
                        "validation_error")]:
        r = await editor_client.post("/api/streams/march/posts", json={
            "body": "Text", "media": [item]})
        assert r.status_code == 422, (item, r.text)
        assert r.json()["error"]["code"] == code, item
    assert await counts(db) == before


async def test_changing_a_posts_photos_is_an_edit_and_restates_its_history(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client)
    first, second = await photo(editor_client), await photo(editor_client)
    created = (await editor_client.post("/api/streams/march/posts", json={
        "body": "The march", "media": [{"id": first["id"], "alt": "First"}]})).json()
    r = await editor_client.patch(f"/api/posts/{created['id']}", json={
        "media": [{"id": second["id"], "alt": "Second"}]})
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2 and r.json()["edited_at"] is not None
    assert [m["alt"] for m in r.json()["media"]] == ["Second"]
    assert r.json()["body"] == "The march"
    events = (await client.get("/api/streams/march/events")).json()["events"]
    assert [e["op"] for e in events][-1] == "post.edited"
    # The earlier event now tells the post as it is: the replaced photo is gone from it.
    assert all(e["post"]["media"][0]["alt"] == "Second" for e in events if "post" in e)
    same = await editor_client.patch(f"/api/posts/{created['id']}", json={
        "media": [{"id": second["id"], "alt": "Second"}]})
    assert same.json()["revision"] == 2 and same.json()["seq"] is None
    removed = await editor_client.patch(f"/api/posts/{created['id']}", json={"media": []})
    assert removed.json()["media"] == [] and removed.json()["revision"] == 3


async def test_the_reader_pages_draw_a_responsive_figure_and_share_the_photo(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client)
    media = await photo(editor_client)
    post = (await editor_client.post("/api/streams/march/posts", json={
        "body": "Marchers reach the palace.",
        "media": [{"id": media["id"], "alt": "Marchers <b>at</b> the palace",
                   "caption": "Miraflores", "credit": "J. Reporter"}]})).json()
    webp = [v for v in media["variants"] if v["content_type"] == "image/webp"]
    jpeg = [v for v in media["variants"] if v["content_type"] == "image/jpeg"]
    for path in ["/live/march", "/embed/march", f"/live/march/posts/{post['id']}"]:
        r = await client.get(path)
        assert r.status_code == 200
        page = Tags(r.text)
        [image] = page.all("img", alt="Marchers <b>at</b> the palace")
        assert (image["width"], image["height"]) == ("1500", "2000")
        assert image["loading"] == "lazy" and image["sizes"]
        assert image["srcset"] == ", ".join(f"{v['url']} {v['width']}w" for v in jpeg)
        assert image["src"] in {v["url"] for v in jpeg}
        [source] = page.all("source", type="image/webp")
        assert source["srcset"] == ", ".join(f"{v['url']} {v['width']}w" for v in webp)
        assert "<figcaption><span class=\"photo-caption\">Miraflores</span>" in r.text
        assert "J. Reporter" in r.text and "<b>at</b>" not in r.text
    page = Tags((await client.get("/live/march")).text)
    largest = max(jpeg, key=lambda v: v["width"])
    [og] = page.all("meta", property="og:image")
    assert og["content"] == "http://testserver" + largest["url"]
    assert page.all("meta", name="twitter:card")[0]["content"] == "summary_large_image"
    assert page.all("meta", name="twitter:image")[0]["content"] == og["content"]
    ld = json.loads(r.text.split('<script type="application/ld+json">')[1].split("</script>")[0])
    assert ld["image"]["url"] == og["content"]


async def test_a_key_event_photo_is_the_one_shared(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await live_story(editor_client)
    key, newer = await photo(editor_client), await photo(editor_client)
    await editor_client.post("/api/streams/march/posts", json={
        "body": "Key", "pinned": True, "media": [{"id": key["id"], "alt": "Key"}]})
    await editor_client.post("/api/streams/march/posts", json={
        "body": "Later", "media": [{"id": newer["id"], "alt": "Later"}]})
    page = Tags((await client.get("/live/march")).text)
    assert page.all("meta", property="og:image:alt")[0]["content"] == "Key"
    await editor_client.post("/api/streams/march/posts", json={"body": "No photo"})
    plain = Tags((await client.get("/live/nothing")).text)
    assert plain.all("meta", property="og:image") == []


async def test_a_post_may_be_a_photo_without_text_but_never_empty(
        editor_client: httpx.AsyncClient, client: httpx.AsyncClient, db: Database) -> None:
    """A photo with its caption is a post of its own; a post with neither text nor photo
    is refused, on create and on edit, and nothing is written."""
    await live_story(editor_client)
    media = await photo(editor_client)
    r = await editor_client.post("/api/streams/march/posts", json={
        "body": "", "pinned": True,
        "media": [{"id": media["id"], "alt": "Marchers on the avenue",
                   "caption": "Avenida Urdaneta at noon"}]})
    assert r.status_code == 201, r.text
    post = r.json()
    assert post["body"] == "" and post["html"] == "" and len(post["media"]) == 1
    page = (await client.get("/live/march")).text
    assert 'alt="Marchers on the avenue"' in page and "Avenida Urdaneta at noon" in page
    # As a key event it is headed by its caption.
    assert '<span class="key-headline">Avenida Urdaneta at noon</span>' in page
    before = await counts(db)
    # Taking its only photo off by an edit would leave nothing: refused.
    r = await editor_client.patch(f"/api/posts/{post['id']}", json={"media": []})
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_post"
    r = await editor_client.post("/api/streams/march/posts", json={"body": "  ", "media": []})
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_post"
    assert await counts(db) == before
    # With text, the photo can go.
    r = await editor_client.patch(f"/api/posts/{post['id']}",
                                  json={"body": "Marchers at noon.", "media": []})
    assert r.status_code == 200 and r.json()["media"] == []
