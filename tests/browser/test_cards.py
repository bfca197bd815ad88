"""Cards on the reader's page in Chromium: readable with no request to any host but the
server until the reader clicks "Load the original", then the provider's player in a
sandboxed frame; a card that arrives later fills in live; without JavaScript the card
reads the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import EditorLogin
from tests.fake_provider import FakeProvider, Reply
from tests.integration.conftest import Api, LiveServer
from tests.web.test_oembed import TWEET, VIDEO, fake, tweet_answer  # noqa: F401 (fixture)

WAIT_MS = 15_000
LATER_VIDEO = "https://www.youtube.com/watch?v=aaaaaaaaaaa"
PLAYER = "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?autoplay=1"


def video_answer(fake: FakeProvider, title: str) -> dict[str, Any]:  # noqa: F811
    """YouTube's answer for a video, with a thumbnail on the fake."""
    return {"type": "video", "title": title, "author_name": "Palace Cam",
            "author_url": "https://www.youtube.com/@palacecam",
            "thumbnail_url": fake.url("/thumb.jpg"), "html": "<iframe src=x></iframe>"}


@pytest.fixture
async def card_server(start_server: Callable[..., Any], fake: FakeProvider  # noqa: F811
                      ) -> LiveServer:
    """A server that fetches cards through the fake provider (as its oEmbed proxy)."""
    server: LiveServer = await start_server(
        oembed_enabled=True, oembed_proxy_url=fake.url("/oembed"),
        oembed_wait_seconds=0.5, oembed_timeout_seconds=5)
    return server


@pytest.fixture
async def card_api(card_server: LiveServer, editor: EditorLogin) -> AsyncIterator[Api]:
    """An editor's client of the card server."""
    client = Api(card_server.base, editor)
    yield client
    await client.client.aclose()


async def open_watched(new_page: Callable[..., Any], server: LiveServer, path: str,
                       **context: Any) -> tuple[Any, list[str]]:
    """A page, with every request it makes recorded; requests to any other host are
    answered by the test (the player with a stand-in page, anything else refused), so
    that nothing leaves this machine."""
    page = await new_page(**context)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    async def elsewhere(route: Any) -> None:
        if route.request.url.startswith("https://www.youtube-nocookie.com/embed/"):
            await route.fulfill(status=200, content_type="text/html",
                                body="<!doctype html><title>player</title><p>The player</p>")
        else:
            await route.abort()

    await page.context.route(lambda url: not url.startswith(server.base), elsewhere)
    await page.goto(f"{server.base}{path}")
    return page, requested


def third_party(requested: list[str], server: LiveServer) -> list[str]:
    """The requests to any host but the server."""
    return [url for url in requested if not url.startswith(server.base + "/")]


async def test_no_third_party_request_until_the_reader_loads_the_original(
    card_server: LiveServer, card_api: Api, fake: FakeProvider,  # noqa: F811
    new_page: Callable[..., Any]
) -> None:
    """The page with a video card and a post card loads only from the server (the
    thumbnail is the server's copy); "Load the original" then frames the no-cookie player,
    sandboxed, and nothing else."""
    fake.answers[VIDEO] = Reply.json(video_answer(fake, "Crowd outside the palace"))
    fake.answers[TWEET] = Reply.json(tweet_answer(fake))
    await card_api.stream("s")
    await card_api.post("s", f"Live pictures:\n{VIDEO}")
    await card_api.post("s", TWEET)
    page, requested = await open_watched(new_page, card_server, "/live/s")
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    await page.wait_for_load_state("networkidle")
    video = page.locator(".link-card[data-provider='youtube']")
    assert await video.locator(".card-title").inner_text() == "Crowd outside the palace"
    assert await video.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    tweet = page.locator(".link-card[data-provider='x']")
    assert "Sunsets" in await tweet.inner_text()
    assert await tweet.locator(".card-date").inner_text() == "May 5, 2014"
    assert third_party(requested, card_server) == []
    assert not any(url.startswith(fake.origin) for url in requested)

    await video.get_by_role("button", name="Load the original from YouTube").click()
    frame = video.locator("iframe.card-frame")
    await frame.wait_for(timeout=WAIT_MS)
    assert await frame.get_attribute("src") == PLAYER
    sandbox = (await frame.get_attribute("sandbox") or "").split()
    assert "allow-scripts" in sandbox and "allow-top-navigation" not in sandbox
    player = page.frame_locator(".link-card[data-provider='youtube'] iframe.card-frame")
    await player.locator("text=The player").wait_for(timeout=WAIT_MS)
    assert third_party(requested, card_server) == [PLAYER]
    assert await video.locator(".card-media").is_hidden()


async def test_a_card_that_arrives_later_fills_in_on_an_open_page(
    card_server: LiveServer, card_api: Api, fake: FakeProvider,  # noqa: F811
    new_page: Callable[..., Any]
) -> None:
    """A post whose provider is slow shows a plain link at once; the card replaces it on
    the open page (post.embedded), with its "Load the original", and the post is not
    marked updated."""
    fake.answers[VIDEO] = Reply.json(video_answer(fake, "First clip"))
    fake.answers[LATER_VIDEO] = Reply.json(video_answer(fake, "Second clip"), delay=2.0)
    await card_api.stream("s")
    await card_api.post("s", VIDEO)
    page, requested = await open_watched(new_page, card_server, "/live/s")
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    created = await card_api.post("s", f"Another angle\n{LATER_VIDEO}")
    assert created["embeds"][0]["state"] == "pending"
    article = page.locator(f"#post-{created['id']}")
    await article.locator(".link-card[data-state='pending'] .card-url a").wait_for(
        timeout=WAIT_MS)
    await article.locator(".link-card[data-state='ready']").wait_for(timeout=WAIT_MS)
    assert await article.locator(".card-title").inner_text() == "Second clip"
    assert await article.get_by_role("button", name="Load the original from YouTube"
                                     ).count() == 1
    assert await article.locator(".post-updated").count() == 0
    await asyncio.sleep(0.2)
    assert third_party(requested, card_server) == []


async def card_ready(api: Api, post_id: int) -> None:
    """Wait until every card of the post is ready, as the API tells."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while True:
        r = await api.client.get(f"/api/posts/{post_id}")
        assert r.status_code == 200, r.text
        states = [embed["state"] for embed in r.json()["embeds"]]
        if states and all(state == "ready" for state in states):
            return
        assert asyncio.get_running_loop().time() < deadline, f"cards still {states}"
        await asyncio.sleep(0.1)


async def test_a_card_reads_without_javascript(
    card_server: LiveServer, card_api: Api, fake: FakeProvider,  # noqa: F811
    new_page: Callable[..., Any]
) -> None:
    """Without JavaScript the card shows its author, text, date and a link to the
    original; there is nothing to load and no button."""
    fake.answers[TWEET] = Reply.json(tweet_answer(fake))
    await card_api.stream("s")
    post = await card_api.post("s", TWEET)
    # On a busy machine the card may miss the post's short wait and come late (as
    # post.embedded); a page without JavaScript shows only what the server has.
    await card_ready(card_api, post["id"])
    page, requested = await open_watched(new_page, card_server, "/live/s",
                                         java_script_enabled=False)
    card = page.locator(".link-card[data-provider='x']")
    text = await card.inner_text()
    for part in ("US Department of the Interior", "Sunsets don't get", "May 5, 2014",
                 "View on X"):
        assert part in text, part
    assert await card.locator("a.card-original").get_attribute("href") == TWEET
    assert await page.locator(".card-load").count() == 0
    assert third_party(requested, card_server) == []
