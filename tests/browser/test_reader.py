"""The reader's page in Chromium: live updates, the reader's place, restarts, safety,
no-JavaScript reading, time zones and accessibility."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.browser.conftest import ConsoleErrors, axe_violations
from tests.conftest import EditorLogin
from tests.integration.conftest import Api, LiveServer

# A generous deadline for waits that only fail when something is broken.
WAIT_MS = 15_000


async def open_reader(new_page: Callable[..., Any], server: LiveServer, slug: str,
                      **context: Any) -> Any:
    """A reader's page, connected to the live socket."""
    page = await new_page(**context)
    await page.goto(f"{server.base}/live/{slug}")
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    return page


async def feed_texts(page: Any) -> list[str]:
    """The text of each post in the feed, top to bottom."""
    texts: list[str] = await page.locator("#feed > article .post-body").all_inner_texts()
    return [" ".join(t.split()) for t in texts]


async def test_post_edit_pin_and_delete_reach_an_open_page(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A new post shows within a second without reload; edits, pins and deletes follow."""
    await api.stream("match")
    await api.post("match", "Kick-off")
    page = await open_reader(new_page, server, "match")
    page_id = await page.evaluate("() => { window.__sameDocument = 1; return 1; }")

    created = await api.post("match", "**Goal!** 1-0 after *12 minutes*")
    article = page.locator(f"#post-{created['id']}")
    await article.wait_for(timeout=1000)
    assert await article.locator("strong").inner_text() == "Goal!"
    assert await feed_texts(page) == ["Goal! 1-0 after 12 minutes", "Kick-off"]

    r = await api.client.patch(f"/api/posts/{created['id']}", json={"body": "Goal! 1-0 (12')"})
    assert r.status_code == 200
    await page.wait_for_function(
        f"() => document.querySelector('#post-{created['id']} .post-body')"
        ".innerText.includes(\"(12')\")",
        timeout=WAIT_MS)
    assert await article.locator(".post-updated").inner_text() != ""
    assert (await article.locator(".post-updated").inner_text()).startswith("Updated ")

    r = await api.client.patch(f"/api/posts/{created['id']}", json={"pinned": True})
    assert r.status_code == 200
    key = page.locator(f"#key-events-list li[data-id='{created['id']}']")
    await key.wait_for(timeout=WAIT_MS)
    assert await key.locator(".key-headline").inner_text() == "Goal! 1-0 (12')"
    assert await page.locator("#key-events").is_visible()
    assert await article.locator(".key-mark").is_visible()

    r = await api.client.delete(f"/api/posts/{created['id']}")
    assert r.status_code in (200, 204)
    await article.wait_for(state="detached", timeout=WAIT_MS)
    await key.wait_for(state="detached", timeout=WAIT_MS)
    assert await feed_texts(page) == ["Kick-off"]
    assert await page.locator("#key-events").is_hidden()
    # All of it without a reload.
    assert await page.evaluate("() => window.__sameDocument") == page_id


async def test_scrolled_reader_gets_a_button_and_nothing_moves(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Scrolled down, a reader sees "N new updates"; nothing above the viewport moves,
    not even when a post above is edited; the button reveals the posts at the top."""
    await api.stream("long")
    posts = [await api.post("long", f"Update {i}\n\n" + "More words here. " * 12)
             for i in range(20)]
    page = await open_reader(new_page, server, "long", viewport={"width": 800, "height": 600})
    await page.locator(f"#post-{posts[8]['id']}").scroll_into_view_if_needed()
    await page.evaluate("window.scrollBy(0, 100)")
    watched = page.locator(f"#post-{posts[6]['id']}")

    async def top() -> float:
        box = await watched.bounding_box()
        assert box is not None
        return float(box["y"])

    before = await top()
    first_new = await api.post("long", "Breaking: first new")
    await api.post("long", "Breaking: second new")
    button = page.locator("#new-updates")
    await page.wait_for_function(
        "() => document.querySelector('#new-updates').innerText.includes('2 new updates')",
        timeout=WAIT_MS)
    assert await button.is_visible()
    assert await page.locator(f"#post-{first_new['id']}").count() == 0
    assert abs(await top() - before) < 1

    # A post above the viewport grows: the reader's place holds.
    r = await api.client.patch(f"/api/posts/{posts[19]['id']}",
                               json={"body": "Update 19, corrected\n\n" + "Longer. " * 200})
    assert r.status_code == 200
    await page.wait_for_function(
        f"() => document.querySelector('#post-{posts[19]['id']} .post-body')"
        ".innerText.includes('corrected')", timeout=WAIT_MS)
    assert abs(await top() - before) < 1
    await page.wait_for_function(
        "() => document.querySelector('#announcer').textContent === '2 new updates'",
        timeout=WAIT_MS)

    await button.click()
    await page.wait_for_function(
        "() => window.scrollY < 200", timeout=WAIT_MS)
    assert (await feed_texts(page))[:2] == ["Breaking: second new", "Breaking: first new"]
    assert await button.is_hidden()


async def test_reader_at_the_top_sees_posts_slide_in(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """At the top of the page a new post goes straight in, and is announced once."""
    await api.stream("top")
    page = await open_reader(new_page, server, "top")
    assert await page.locator("#feed-empty").is_visible()
    await api.post("top", "Straight in")
    await page.wait_for_selector("#feed > article", timeout=WAIT_MS)
    assert await page.locator("#new-updates").is_hidden()
    assert await page.locator("#feed-empty").is_hidden()
    await page.wait_for_function(
        "() => document.querySelector('#announcer').textContent === '1 new update'",
        timeout=WAIT_MS)


async def test_hidden_tab_counts_new_posts_in_the_title(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """While the tab is hidden the title shows "(N)"; showing the tab clears it."""
    await api.stream("tabs")
    page = await open_reader(new_page, server, "tabs")
    title = await page.title()
    await page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        Object.defineProperty(document, "visibilityState", {configurable: true,
                                                             get: () => "hidden"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    await api.post("tabs", "One")
    await api.post("tabs", "Two")
    await page.wait_for_function(
        f"() => document.title === {json.dumps('(2) ' + title)}",
                                 timeout=WAIT_MS)
    await page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
        Object.defineProperty(document, "visibilityState", {configurable: true,
                                                             get: () => "visible"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    assert await page.title() == title
    assert await feed_texts(page) == ["Two", "One"]


async def test_posts_made_while_the_server_restarts_arrive_once(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        start_server: Callable[..., Any], editor: EditorLogin,
        console: ConsoleErrors) -> None:
    """The server restarts under an open page; posts made meanwhile appear, none lost or
    doubled, in order."""
    # Chromium logs each refused reconnect attempt while the server is down.
    console.allowed.append("net::ERR_CONNECTION_REFUSED")
    await api.stream("restart")
    await api.post("restart", "Before 1")
    page = await open_reader(new_page, server, "restart")
    await api.post("restart", "Before 2")
    await page.wait_for_selector("#feed > article:nth-child(2)", timeout=WAIT_MS)

    await server.stop()
    await page.wait_for_selector("main:not([data-connection='live'])", timeout=WAIT_MS)
    assert await page.locator("#live-badge").text_content() == "Reconnecting…"
    # Another process on the same database takes the posts while this one is down.
    other = await start_server()
    other_api = Api(other.base, editor)
    try:
        for i in range(5):
            await other_api.post("restart", f"During {i}")
    finally:
        await other_api.client.aclose()
    await server.start()
    await api.post("restart", "After")

    await page.wait_for_function(
        "() => document.querySelectorAll('#feed > article').length === 8", timeout=30_000)
    assert await feed_texts(page) == ["After", *[f"During {i}" for i in reversed(range(5))],
                                      "Before 2", "Before 1"]
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    assert await page.locator("#live-badge").text_content() == "Live"


XSS = [
    "<script>window.__xss = 1</script>",
    '<img src="x" onerror="window.__xss = 2">',
    "[click me](javascript:window.__xss=3)",
    '"><svg onload="window.__xss = 4">',
    "<iframe src=\"javascript:parent.__xss = 5\"></iframe>",
]


async def test_xss_payloads_render_as_inert_text(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Script in posts does not run, whether the post arrives live or in the page."""
    await api.stream("xss")
    page = await open_reader(new_page, server, "xss")
    for payload in XSS:
        await api.post("xss", payload)
    await page.wait_for_function(
        f"() => document.querySelectorAll('#feed > article').length === {len(XSS)}",
        timeout=WAIT_MS)
    assert await page.locator("#feed a[href^='javascript']").count() == 0
    assert await page.evaluate("() => window.__xss") is None
    assert "<script>window.__xss = 1</script>" in await page.locator("#feed").inner_text()
    assert await page.locator("#feed script, #feed iframe, #feed svg, #feed [onerror]").count() == 0

    await page.reload()
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    assert await page.evaluate("() => window.__xss") is None
    assert await page.locator("#feed script, #feed iframe, #feed svg, #feed [onerror]").count() == 0


async def test_page_without_javascript_shows_posts_and_json_ld(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """With JavaScript off the posts and key events are there, and the JSON-LD parses with
    the LiveBlogPosting fields."""
    await api.stream("nojs")
    first = await api.post("nojs", "# Polls open\nAt 7am.")
    r = await api.client.patch(f"/api/posts/{first['id']}", json={"pinned": True})
    assert r.status_code == 200
    await api.post("nojs", "Queues at the stations")
    page = await new_page(java_script_enabled=False)
    await page.goto(f"{server.base}/live/nojs")
    assert await feed_texts(page) == ["Queues at the stations", "Polls open At 7am."]
    assert await page.locator("#key-events").is_visible()
    assert "Polls open" in await page.locator("#key-events").inner_text()
    raw = await page.locator("script[type='application/ld+json']").text_content()
    data = json.loads(raw or "")
    assert data["@type"] == "LiveBlogPosting"
    for key in ("headline", "description", "url", "datePublished", "dateModified",
                "coverageStartTime"):
        assert data[key], key
    assert [u["headline"] for u in data["liveBlogUpdate"]] == ["Queues at the stations",
                                                               "Polls open"]
    for update in data["liveBlogUpdate"]:
        assert update["@type"] == "BlogPosting"
        assert update["url"].startswith(f"{server.base}/live/nojs#post-")
        assert update["author"]["name"] == "Alice"
        assert update["articleBody"] and update["datePublished"] and update["dateModified"]


async def test_load_older_without_and_with_javascript(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """"Load older updates" pages back through the posts, as a link and in place."""
    await api.stream("older")
    for i in range(23):
        await api.post("older", f"Post {i}")
    plain = await new_page(java_script_enabled=False)
    await plain.goto(f"{server.base}/live/older")
    await plain.get_by_role("link", name="Load older updates").click()
    assert await feed_texts(plain) == ["Post 2", "Post 1", "Post 0"]

    page = await open_reader(new_page, server, "older")
    await page.get_by_role("link", name="Load older updates").click()
    await page.wait_for_function(
        "() => document.querySelectorAll('#feed > article').length === 23",
                                 timeout=WAIT_MS)
    assert (await feed_texts(page))[-3:] == ["Post 2", "Post 1", "Post 0"]
    assert await page.get_by_role("link", name="Load older updates").count() == 0
    assert page.url == f"{server.base}/live/older"


async def test_the_story_header_says_when_it_last_changed_live(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """The header's "Updated HH:MM" follows each new post, edit and pin on an open page:
    the time of the newest change, shown in the reader's zone."""
    await api.stream("match")
    await api.post("match", "Kick-off")
    page = await open_reader(new_page, server, "match", timezone_id="Asia/Kathmandu",
                             locale="en-GB")
    header = page.locator("#story-updated time")
    first = await header.get_attribute("datetime")

    async def shows(stamp: str) -> None:
        await page.wait_for_function(
            "s => document.querySelector('#story-updated time').dateTime === s", arg=stamp,
            timeout=WAIT_MS)
        local = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(
            hours=5, minutes=45)
        assert (await header.inner_text()).startswith(local.strftime("%H:%M"))

    created = await api.post("match", "Goal! 1-0")
    assert created["created_at"] > (first or "")
    await shows(created["created_at"])
    r = await api.client.patch(f"/api/posts/{created['id']}", json={"body": "Goal! 1-0 (12')"})
    await shows(r.json()["edited_at"])
    await api.client.patch(f"/api/posts/{created['id']}", json={"pinned": True})
    log = (await api.client.get("/api/streams/match/events")).json()["events"]
    assert log[-1]["op"] == "post.pinned"
    await shows(log[-1]["at"])
    # A page loaded now says the same.
    await page.reload()
    assert (await header.get_attribute("datetime") or "")[:19] == log[-1]["at"][:19]


async def test_times_are_shown_in_the_readers_zone(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Each post's time is its UTC instant in the reader's time zone, with "ago" wording."""
    await api.stream("zones")
    await api.post("zones", "In Kathmandu")
    page = await open_reader(new_page, server, "zones", timezone_id="Asia/Kathmandu",
                             locale="en-GB")
    time = page.locator("#feed .post-time time").first
    stamp = await time.get_attribute("datetime")
    assert stamp is not None and stamp.endswith("Z")
    local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC) + timedelta(
        hours=5, minutes=45)
    text = await time.inner_text()
    assert text.startswith(local.strftime("%H:%M")), text
    assert re.search(r"· (now|\d+ minutes? ago)$", text), text
    assert "5:45" in (await time.get_attribute("title") or "")


async def test_embed_follows_live_inside_another_sites_frame(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """The embed snippet in a page elsewhere shows new posts live; its links leave the frame."""
    await api.stream("embedded")
    html = (f'<!doctype html><title>News</title><h1>News article</h1><iframe '
            f'src="{server.base}/embed/embedded" title="Live updates" width="600" '
            'height="500"></iframe>').encode()

    async def news_site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(html), html))
        await writer.drain()
        writer.close()

    # The article is on another origin: a second local port.
    site = await asyncio.start_server(news_site, "127.0.0.1", 0)
    port = site.sockets[0].getsockname()[1]
    page = await new_page()
    await page.goto(f"http://127.0.0.1:{port}/2026/11/story")
    frame = page.frame_locator("iframe")
    await frame.locator("main[data-connection='live']").wait_for(timeout=WAIT_MS)
    await api.post("embedded", "Seen [inside](https://example.com/) the frame")
    await frame.locator("#feed > article").wait_for(timeout=WAIT_MS)
    assert "inside the frame" in await frame.locator("#feed").inner_text()
    assert await frame.locator("#feed a[href='https://example.com/']").get_attribute(
        "target") == "_blank"
    site.close()


async def test_ended_story_shows_ended(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Ending the story turns the badge to Ended on open pages."""
    await api.stream("ending")
    page = await open_reader(new_page, server, "ending")
    assert await page.locator("#live-badge").text_content() == "Live"
    r = await api.client.patch("/api/streams/ending", json={"status": "ended"})
    assert r.status_code == 200
    await page.wait_for_selector("#live-badge[data-state='ended']", timeout=WAIT_MS)
    assert await page.locator("#live-badge").text_content() == "Ended"


async def test_reader_page_and_embed_pass_the_accessibility_audit(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """axe-core finds no serious or critical violation on the reader page or the embed."""
    await api.stream("audit")
    key = await api.post("audit", "## Key moment\nSomething happened.")
    await api.client.patch(f"/api/posts/{key['id']}", json={"pinned": True})
    await api.post("audit", "| a | b |\n| - | - |\n| 1 | 2 |")
    for path in ("/live/audit", "/embed/audit", f"/live/audit/posts/{key['id']}", "/live"):
        page = await new_page(bypass_csp=True)
        await page.goto(server.base + path)
        assert await axe_violations(page) == [], path


async def test_keyboard_reaches_the_new_updates_button_and_posts(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """The posts and the new-updates button are reachable with Tab; Enter reveals."""
    await api.stream("keys")
    for i in range(15):
        await api.post("keys", f"Post {i}\n\n" + "Text. " * 40)
    page = await open_reader(new_page, server, "keys", viewport={"width": 600, "height": 500})
    await page.evaluate("window.scrollTo(0, 1500)")
    await api.post("keys", "Fresh")
    button = page.locator("#new-updates")
    await button.wait_for(state="visible", timeout=WAIT_MS)
    await button.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => document.activeElement && document.activeElement.matches('#feed > article')",
        timeout=WAIT_MS)
    assert "Fresh" in await page.evaluate("document.activeElement.innerText")


async def test_reader_falls_back_to_sse_when_websocket_is_blocked(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Where a proxy kills WebSocket, the page follows over Server-Sent Events instead."""
    await api.stream("proxy")
    page = await new_page()
    refused: list[str] = []

    async def kill(ws: Any) -> None:
        refused.append(ws.url)
        await ws.close(code=1011, reason="blocked by a proxy")

    await page.route_web_socket("**/ws", kill)
    streams: list[str] = []
    page.on("request", lambda r: "/api/streams/proxy/events" in r.url and streams.append(
        r.headers.get("accept", "")))
    await page.goto(f"{server.base}/live/proxy")
    await page.wait_for_selector("main[data-connection='live']", timeout=30_000)
    assert refused
    await api.post("proxy", "Over SSE")
    await page.wait_for_selector("#feed > article", timeout=WAIT_MS)
    assert await feed_texts(page) == ["Over SSE"]
    assert "text/event-stream" in streams


async def test_reduced_motion_means_no_slide_in(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """With prefers-reduced-motion a new post appears without the slide-in animation."""
    await api.stream("calm")
    calm = await open_reader(new_page, server, "calm", reduced_motion="reduce")
    lively = await open_reader(new_page, server, "calm")
    item = await api.post("calm", "Quietly")
    for page in (calm, lively):
        await page.wait_for_selector(f"#post-{item['id']}", timeout=WAIT_MS)
    assert "slide-in" not in (await calm.get_attribute(f"#post-{item['id']}", "class") or "")
    assert "slide-in" in (await lively.get_attribute(f"#post-{item['id']}", "class") or "")


async def test_the_root_shows_a_browser_the_stories_live_and_ended(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Chromium opening / (the address the server prints) gets the story list, not JSON:
    live stories and ended ones under their own headings, with their times, readable
    without JavaScript and without serious accessibility problems."""
    await api.stream("count")
    await api.stream("debate")
    await api.client.patch("/api/streams/debate", json={"status": "ended"})
    page = await new_page(java_script_enabled=False, bypass_csp=True)
    response = await page.goto(f"{server.base}/")
    assert response.headers["content-type"].startswith("text/html")
    live = page.get_by_role("region", name="Live now")
    ended = page.get_by_role("region", name="Ended")
    assert await live.get_by_role("link").all_inner_texts() == ["Count"]
    assert await ended.get_by_role("link").all_inner_texts() == ["Debate"]
    assert await ended.locator("time").count() == 2
    assert "Last updated" in await live.inner_text()
    audited = await new_page(bypass_csp=True)
    await audited.goto(f"{server.base}/")
    assert await axe_violations(audited) == []
