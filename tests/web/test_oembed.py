"""Cards through the real app against a local fake provider: a full card with the server's
copy of the thumbnail; a hostile provider leaves nothing that runs; one that hangs, is
slow, redirects elsewhere or floods cannot hold up publishing or reach past its limits;
late cards arrive as post.embedded without marking the post edited; the preview's
notices; the reader page's frame-src."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from bulletin.settings import Settings
from bulletin.store import eventlog
from bulletin.store.db import Database
from bulletin.web.app import create_app
from bulletin.web.latecards import resume
from tests.conftest import make_editor
from tests.core.test_cards import HOSTILE, X_ANSWER
from tests.core.test_content import assert_inert
from tests.fake_provider import FakeProvider, Reply, gps_jpeg
from tests.helpers import events, new_post, new_stream
from tests.web.test_desk import desk  # noqa: F401 (the signed-in desk fixture)

TWEET = "https://x.com/Interior/status/463440424141459456"
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
# Long enough for the fake provider and a thumbnail to be processed on a busy machine;
# the hanging and slow providers are timed from it.
WAIT = 1.5
TIMEOUT = 3.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    """The fake provider, serving a thumbnail (with GPS metadata) at /thumb.jpg."""
    provider = FakeProvider()
    await provider.start()
    provider.files["/thumb.jpg"] = Reply(body=gps_jpeg(), content_type="image/jpeg")
    yield provider
    await provider.stop()


@pytest.fixture
def settings(settings: Settings, fake: FakeProvider) -> Settings:
    """The test settings with cards fetched through the fake, as a proxy, on short limits."""
    return replace(settings, oembed_enabled=True, oembed_proxy_url=fake.url("/oembed"),
                   oembed_wait_seconds=WAIT, oembed_timeout_seconds=TIMEOUT)


def tweet_answer(fake: FakeProvider, **extra: Any) -> dict[str, Any]:
    """X's answer for TWEET, with a thumbnail on the fake."""
    return X_ANSWER | {"thumbnail_url": fake.url("/thumb.jpg"), "thumbnail_width": 640} | extra


async def wait_for(client: httpx.AsyncClient, slug: str, op: str, within: float
                   ) -> list[dict[str, Any]]:
    """The stream's log once an event with ``op`` is in it."""
    deadline = time.monotonic() + within
    while True:
        log = await events(client, slug)
        if any(e["op"] == op for e in log):
            return log
        assert time.monotonic() < deadline, f"no {op} within {within} s: {log}"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def other_app(settings: Settings, db: Database, **changes: Any
                    ) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app with other settings, and an editor's client of it."""
    app = create_app(replace(settings, **changes))
    async with app.router.lifespan_context(app):
        login = await make_editor(db, "bob")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers=login.headers) as client:
            yield app, client


# --- full cards -----------------------------------------------------------------------


async def test_a_tweet_becomes_a_full_card_with_the_servers_copy_of_its_thumbnail(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """A link under the text becomes a card with author, text, date and a thumbnail that
    the server copied, stripped of its GPS position, into its own media storage."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake))
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", f"Crowds at the palace.\n{TWEET}")
    [card] = post["embeds"]
    assert card["state"] == "ready" and card["provider"] == "x"
    assert card["author_name"] == "US Department of the Interior"
    assert card["text"].startswith("Sunsets don't get much better")
    assert card["date"] == "May 5, 2014" and card["problem"] is None
    assert post["html"].startswith("<p>Crowds at the palace.</p>\n<figure class=\"link-card")
    assert_inert(post["html"], cards_allowed=True)
    [call] = fake.calls()
    assert call.query == {"url": TWEET, "format": "json"}
    variants = card["thumbnail"]["variants"]
    assert {v["content_type"] for v in variants} == {"image/webp", "image/jpeg"}
    for variant in variants:
        assert variant["url"].startswith("/media/") and variant["url"] in post["html"]
        served = await editor_client.get(variant["url"])
        assert served.status_code == 200
        image = Image.open(io.BytesIO(served.content))
        assert len(image.getexif()) == 0 and "exif" not in image.info
    assert [e["op"] for e in await events(editor_client, "s")] == ["post.created"]


async def test_a_provider_endpoint_override_gets_the_providers_parameters(
    settings: Settings, db: Database, fake: FakeProvider
) -> None:
    """Without a proxy, an X link is fetched from X's endpoint (here overridden to the fake)
    with X's own parameters: no script, do not track."""
    fake.files["/x-oembed"] = Reply.json(tweet_answer(fake))
    fake.files["/ig-oembed"] = Reply.json({"author_name": "natgeo", "title": "A caption"})
    async with other_app(settings, db, oembed_proxy_url="", oembed_meta_token="1|secret",
                         oembed_endpoints=(f"x={fake.url('/x-oembed')}",
                                           f"instagram={fake.url('/ig-oembed')}")
                         ) as (_app, client):
        await new_stream(client, "s")
        post = await new_post(client, "s",
                              f"{TWEET}\n\nhttps://www.instagram.com/p/C1a2B3c4D5e/")
    assert [e["state"] for e in post["embeds"]] == ["ready", "ready"]
    [call] = fake.calls("/x-oembed")
    assert call.query == {"url": TWEET, "format": "json", "omit_script": "1", "dnt": "true"}
    [call] = fake.calls("/ig-oembed")
    assert call.query == {"url": "https://www.instagram.com/p/C1a2B3c4D5e/", "format": "json",
                          "omitscript": "true", "access_token": "1|secret"}
    assert sorted(r.path for r in fake.requests) == ["/ig-oembed", "/thumb.jpg", "/x-oembed"]


# --- hostile and failing providers ----------------------------------------------------


async def test_a_hostile_provider_leaves_nothing_that_runs(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """Script, event handlers and javascript: URLs in the markup and the fields reach no
    page, and a thumbnail on a host that is not the provider's is never fetched."""
    fake.answers[TWEET] = Reply.json(HOSTILE | {"thumbnail_url": "https://evil.example/x.jpg"})
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", TWEET)
    [card] = post["embeds"]
    assert card["state"] == "ready" and card["thumbnail"] is None
    assert card["author_url"] is None and card["text"] == "Hello there"
    assert_inert(post["html"], cards_allowed=True)
    page = (await client.get("/live/s")).text
    assert post["html"] in page
    for html in (post["html"], page):
        for bad in ("javascript:", "onerror", "onclick", "onmouseover", "alert("):
            assert bad not in html, bad
    assert [r.path for r in fake.requests] == ["/oembed"]


async def test_a_hanging_provider_does_not_hold_up_publishing(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """The post is accepted after the short wait with a plain link card; when the call
    times out, a post.embedded event keeps the plain link and says why, and the post is
    not marked edited."""
    fake.answers[TWEET] = Reply.hang()
    await new_stream(editor_client, "s")
    started = time.monotonic()
    post = await new_post(editor_client, "s", f"Breaking\n{TWEET}")
    assert time.monotonic() - started < WAIT + 1.0
    assert post["embeds"][0]["state"] == "pending"
    assert f'<a href="{TWEET}"' in post["html"]
    log = await wait_for(editor_client, "s", "post.embedded", TIMEOUT + 3)
    assert [e["op"] for e in log] == ["post.created", "post.embedded"]
    late = log[1]["post"]
    assert late["embeds"][0]["state"] == "link"
    assert late["embeds"][0]["problem"]["code"] == "provider_timeout"
    assert "provider did not answer" in late["embeds"][0]["problem"]["message"]
    assert late["revision"] == 1 and late["edited_at"] is None
    assert log[0]["post"] == late  # the post.created is restated to the current state
    revisions = await editor_client.get(f"/api/posts/{post['id']}/revisions")
    assert revisions.json()["revisions"] == []


async def test_a_slow_card_arrives_later_as_post_embedded(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """A card that is ready after publishing reaches the post (and every replay of it) as
    post.embedded: same revision, no edited_at, the card in its html."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake), delay=WAIT + 0.3)
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", TWEET)
    assert post["embeds"][0]["state"] == "pending" and "Sunsets" not in post["html"]
    log = await wait_for(editor_client, "s", "post.embedded", TIMEOUT + 3)
    late = log[-1]["post"]
    assert late["embeds"][0]["state"] == "ready" and "Sunsets" in late["html"]
    assert late["revision"] == 1 and late["edited_at"] is None
    assert (await editor_client.get(f"/api/posts/{post['id']}")).json() == late
    assert [e["seq"] for e in log] == [log[0]["seq"], log[0]["seq"] + 1]
    assert len(fake.calls()) == 1  # the request and the late card shared one call


async def test_a_late_card_for_replaced_text_is_not_applied(
    app: Starlette, editor_client: httpx.AsyncClient, fake: FakeProvider, db: Database
) -> None:
    """A card that arrives after the editor changed the text is dropped: the edit made
    its own cards."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake), delay=WAIT + 0.3)
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", TWEET)
    edited = await editor_client.patch(f"/api/posts/{post['id']}", json={"body": "No link"})
    assert edited.status_code == 200
    await asyncio.sleep(WAIT + 0.8)
    assert [e["op"] for e in await events(editor_client, "s")] == [
        "post.created", "post.edited"]
    book = await app.state.services.cards.gather(TWEET)  # the card, ready by now
    async with db.write() as session:
        view, late = await eventlog.embed_cards(session, post_id=post["id"], body=TWEET,
                                                book=book)
    assert view is None and late == []


async def test_a_redirect_to_another_host_is_refused(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """A redirect to another host (here another port) is not followed; one on the same
    host is."""
    other = FakeProvider()
    await other.start()
    try:
        other.answers[TWEET] = Reply.json(tweet_answer(fake))
        fake.answers[TWEET] = Reply.redirect(other.url("/oembed?url=" + TWEET))
        fake.answers[VIDEO] = Reply.redirect("/moved")
        fake.files["/moved"] = Reply.json({"title": "Moved video", "type": "video"})
        await new_stream(editor_client, "s")
        post = await new_post(editor_client, "s", f"{TWEET}\n\n{VIDEO}")
    finally:
        await other.stop()
    tweet, video = post["embeds"]
    assert tweet["state"] == "link" and tweet["problem"]["code"] == "provider_redirect"
    assert "another host" in tweet["problem"]["message"]
    assert other.requests == []
    assert video["state"] == "ready" and video["title"] == "Moved video"


@pytest.mark.parametrize(("reply", "code"), [
    (Reply(body=b"{" + b" " * (600 * 1024) + b"}"), "provider_too_large"),
    (Reply(body=b"[" + b"0," * (400 * 1024) + b"0]", chunked=True), "provider_too_large"),
    (Reply(body=b"<html>hi</html>", content_type="text/html"), "provider_not_json"),
    (Reply(body=b"[1, 2]"), "provider_not_json"),
    (Reply(status=500, body=b"{}"), "provider_error"),
], ids=["declared-too-large", "streamed-too-large", "html", "not-an-object", "http-500"])
async def test_answers_past_the_limits_are_refused(
    editor_client: httpx.AsyncClient, fake: FakeProvider, reply: Reply, code: str
) -> None:
    """An answer over the size limit (declared or streamed), not JSON, not an object or
    not a 200 leaves a plain link card with the reason."""
    fake.answers[TWEET] = reply
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", TWEET)
    [card] = post["embeds"]
    assert (card["state"], card["problem"]["code"]) == ("link", code)
    assert f'<a href="{TWEET}"' in post["html"]


async def test_meta_cards_need_the_token_and_call_nothing_without_it(
    settings: Settings, db: Database, fake: FakeProvider
) -> None:
    """Without a proxy or a Meta app token, a Facebook link is a plain link card that says
    why, and no call is made."""
    async with other_app(settings, db, oembed_proxy_url="") as (_app, client):
        await new_stream(client, "s")
        post = await new_post(client, "s", "https://www.facebook.com/nasa/posts/123")
    [card] = post["embeds"]
    assert card["problem"]["code"] == "token_missing"
    assert "BULLETIN_OEMBED_META_TOKEN" in card["problem"]["message"]
    assert fake.requests == []


async def test_cards_can_be_turned_off(settings: Settings, db: Database,
                                       fake: FakeProvider) -> None:
    """With BULLETIN_OEMBED_ENABLED=0 every card is a plain link and nothing is called."""
    async with other_app(settings, db, oembed_enabled=False) as (_app, client):
        await new_stream(client, "s")
        post = await new_post(client, "s", TWEET)
    assert post["embeds"][0]["problem"]["code"] == "cards_off"
    assert fake.requests == []


async def test_an_unexpected_failure_is_a_plain_link_card_not_an_error(
    app: Starlette, editor_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while making a card leaves a plain link card; the post is published."""
    async def broken(link: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.state.services.cards.fetcher, "oembed", broken)
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", TWEET)
    assert post["embeds"][0]["problem"]["code"] == "card_failed"


async def test_shutdown_cancels_fetches_in_flight(settings: Settings, db: Database,
                                                  fake: FakeProvider) -> None:
    """Stopping the app cancels the background fetches at once, without an error."""
    fake.answers[TWEET] = Reply.hang()
    started = 0.0
    async with other_app(settings, db, oembed_timeout_seconds=30) as (app, client):
        await new_stream(client, "s")
        await new_post(client, "s", TWEET)
        cards = app.state.services.cards
        assert cards._tasks, "a fetch and its late card are running"
        started = time.monotonic()
    assert time.monotonic() - started < 2
    assert not cards._tasks


async def test_cards_a_stopped_process_left_pending_are_made_when_the_next_starts(
        settings: Settings, db: Database, fake: FakeProvider) -> None:
    """A post published while its provider hung, by a process that then stopped, keeps a
    pending card; the next process to start makes it, without marking the post edited."""
    fake.answers[TWEET] = Reply.hang()
    async with other_app(settings, db, oembed_timeout_seconds=30) as (_app, client):
        await new_stream(client, "s")
        post = await new_post(client, "s", f"Breaking\n{TWEET}")
        assert post["embeds"][0]["state"] == "pending"
    fake.answers[TWEET] = Reply.json(tweet_answer(fake))
    async with reader_app(settings) as (_app, client):
        log = await wait_for(client, "s", "post.embedded", TIMEOUT + 3)
        assert [e["op"] for e in log] == ["post.created", "post.embedded"]
        late = log[-1]["post"]
        assert late["embeds"][0]["state"] == "ready" and "Sunsets" in late["html"]
        assert late["revision"] == 1 and late["edited_at"] is None
    # A third start finds nothing left pending: no second event.
    async with reader_app(settings) as (app, client):
        assert await resume(app.state.services) == 0
        assert [e["op"] for e in await events(client, "s")] == ["post.created",
                                                                  "post.embedded"]


@asynccontextmanager
async def reader_app(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """Another start of the app, and an anonymous client of it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, c


# --- the desk ---------------------------------------------------------------------------


async def test_the_preview_says_what_was_removed_and_which_cards_failed(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """The preview's notices name an http image and a provider that did not answer; its
    html is the card as readers will see it; typing again does not call again."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake))
    fake.answers[VIDEO] = Reply(status=503)
    body = f"![map](http://example.com/map.png) Map\n{TWEET}\n\n{VIDEO}"
    for _typing in range(3):
        preview = (await editor_client.post("/editor/preview", json={"body": body})).json()
    assert [n["code"] for n in preview["notices"]] == ["image_not_https", "provider_error"]
    assert "http:// images are not loaded, use https" in preview["notices"][0]["message"]
    assert preview["notices"][1]["message"] == (
        "YouTube card: the provider answered HTTP 503 (shown as a plain link)")
    assert len(fake.calls()) == 2 and len(fake.calls("/thumb.jpg")) == 1
    await new_stream(editor_client, "s")
    post = await new_post(editor_client, "s", body)
    assert post["html"] == preview["html"] and "Sunsets" in preview["html"]
    assert len(fake.calls()) == 2


async def test_the_preview_of_a_pending_card_says_so(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """A card still on its way has a notice, and the preview comes back after the wait."""
    fake.answers[TWEET] = Reply.hang()
    started = time.monotonic()
    preview = (await editor_client.post("/editor/preview", json={"body": TWEET})).json()
    assert time.monotonic() - started < WAIT + 1
    assert [n["code"] for n in preview["notices"]] == ["card_pending"]
    empty = (await editor_client.post("/editor/preview",
                                      json={"body": "![x](http://e.com/x.png)"})).json()
    assert empty["html"] == "" and [n["code"] for n in empty["notices"]] == ["image_not_https"]


async def test_the_desk_form_publishes_without_waiting_long(
    desk: Any, editor_client: httpx.AsyncClient, fake: FakeProvider  # noqa: F811
) -> None:
    """The no-JavaScript form posts after the short wait too, and the card follows."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake), delay=WAIT + 0.3)
    await new_stream(editor_client, "s")
    started = time.monotonic()
    response = await desk.post("/editor/streams/s/posts", data={
        "csrf_token": desk.csrf, "body": f"From the desk\n{TWEET}", "idempotency_key": "k1"})
    assert response.status_code == 303 and time.monotonic() - started < WAIT + 1
    log = await wait_for(editor_client, "s", "post.embedded", TIMEOUT + 3)
    assert log[-1]["post"]["embeds"][0]["state"] == "ready"


# --- the reader's page ------------------------------------------------------------------


def frame_src(response: httpx.Response) -> str:
    """The frame-src of a page's Content-Security-Policy."""
    found = re.search(r"frame-src ([^;]+)", response.headers["content-security-policy"])
    assert found is not None
    return found.group(1)


async def test_frame_src_names_only_the_players_of_the_cards_on_the_page(
    editor_client: httpx.AsyncClient, client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """A page without cards allows no frame at all; with a YouTube card, only the
    no-cookie player's origin, which the page also lists for its script."""
    await new_stream(editor_client, "s")
    await new_post(editor_client, "s", "Nothing to frame")
    assert frame_src(await client.get("/live/s")) == "'none'"
    fake.answers[VIDEO] = Reply.json({"title": "Clip", "author_name": "Channel",
                                      "thumbnail_url": fake.url("/thumb.jpg")})
    post = await new_post(editor_client, "s", VIDEO)
    for path in ("/live/s", "/embed/s", f"/live/s/posts/{post['id']}"):
        page = await client.get(path)
        assert frame_src(page) == "https://www.youtube-nocookie.com", path
        assert 'data-frames="https://www.youtube-nocookie.com"' in page.text
        assert "<iframe" not in page.text
    assert frame_src(await client.get("/live")) == "'none'"


async def test_a_late_card_of_a_scheduled_post_waits_with_it(
    editor_client: httpx.AsyncClient, fake: FakeProvider
) -> None:
    """A card arriving for a scheduled post goes into the post without an event (readers'
    seq does not move); the post.created of its publishing carries the card."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake), delay=WAIT + 0.3)
    await new_stream(editor_client, "s")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await editor_client.post("/api/streams/s/posts",
                                       json={"body": TWEET, "publish_at": later})
    assert created.status_code == 201, created.text
    post = created.json()
    assert post["embeds"][0]["state"] == "pending"
    deadline = time.monotonic() + TIMEOUT + 3
    while (await editor_client.get(f"/api/posts/{post['id']}")).json()["embeds"][0][
            "state"] == "pending":
        assert time.monotonic() < deadline, "the late card never reached the post"
        await asyncio.sleep(0.05)
    assert await events(editor_client, "s") == []
    approved = await editor_client.post(f"/api/posts/{post['id']}/approve")
    log = await events(editor_client, "s")
    assert [e["op"] for e in log] == ["post.created"] and approved.json()["seq"] == 1
    assert log[0]["post"]["embeds"][0]["state"] == "ready" and "Sunsets" in log[0]["post"]["html"]
