"""The reader's key-events toggle and tag pages in Chromium: links that work without
JavaScript, and a filtered page that keeps to its filter live as editors tag, pin and
unpin; headlines and bylines drawn for posts that arrive live as the server draws them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bulletin.store.db import Database
from tests.browser.conftest import axe_violations
from tests.integration.conftest import Api, LiveServer
from tests.web.test_publishing import make_contributor

from .test_reader import WAIT_MS, feed_texts


async def _live(new_page: Callable[..., Any], url: str, **context: Any) -> Any:
    page = await new_page(**context)
    await page.goto(url)
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    return page


async def _until(page: Any, expected: list[str]) -> None:
    await page.wait_for_function(
        """(want) => JSON.stringify([...document.querySelectorAll('#feed > article .post-body')]
             .map((e) => e.innerText.split(/\\s+/).join(' ').trim())) === JSON.stringify(want)""",
        arg=expected, timeout=WAIT_MS)


async def test_the_key_events_page_follows_pins_live(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """"Key events only" leads to the page of the key events; there a pinned post
    appears live, an unpinned one leaves, and a new unpinned post never shows."""
    await api.stream("vote")
    first = await api.post("vote", "Polls open")
    await api.client.post("/api/streams/vote/posts", json={"body": "Key: turnout record",
                                                           "pinned": True})
    page = await _live(new_page, f"{server.base}/live/vote", bypass_csp=True)
    await page.get_by_role("link", name="Key events only").click()
    await page.wait_for_url("**/live/vote?pinned=true")
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    assert await feed_texts(page) == ["Key: turnout record"]
    assert await page.locator("#key-events").count() == 0
    current = page.locator('.feed-filter a[aria-current="page"]')
    assert await current.inner_text() == "Key events only"
    await api.post("vote", "Not a key event")
    await api.client.patch(f"/api/posts/{first['id']}", json={"pinned": True})
    await _until(page, ["Key: turnout record", "Polls open"])
    await api.client.patch(f"/api/posts/{first['id']}", json={"pinned": False})
    await _until(page, ["Key: turnout record"])
    await page.get_by_role("link", name="All updates").click()
    await page.wait_for_url(f"{server.base}/live/vote")
    # The browser may show its cached copy of the page (max-age=5): the script catches up.
    await _until(page, ["Not a key event", "Key: turnout record", "Polls open"])
    assert await axe_violations(page) == []


async def test_a_tag_page_keeps_to_its_tag_and_draws_headlines_and_bylines(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A tag link leads to the tag's page; a post tagged later appears there with its
    headline, bylines and tags drawn as the server draws them, and leaves when its tag
    is taken off."""
    await api.stream("vote")
    zoe = (await api.client.post("/api/people", json={
        "name": "Zoe Mendes", "description": "Reporter in Caracas"})).json()
    await api.client.post("/api/streams/vote/posts", json={"body": "Jobs report",
                                                           "tags": ["economy"]})
    page = await _live(new_page, f"{server.base}/live/vote", bypass_csp=True)
    await page.locator(".post-tags a", has_text="#economy").click()
    await page.wait_for_url("**/live/vote?tag=economy")
    await page.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    later = await api.post("vote", "Markets rally")
    await api.client.patch(f"/api/posts/{later['id']}", json={
        "tags": ["economy", "markets"], "headline": "Stocks up 3%",
        "contributors": [zoe["id"]]})
    await _until(page, ["Markets rally", "Jobs report"])
    article = page.locator(f"#post-{later['id']}")
    assert await article.locator(".post-headline").inner_text() == "Stocks up 3%"
    assert await article.locator(".byline-name").inner_text() == "Zoe Mendes"
    assert await article.locator(".byline-role").inner_text() == "Reporter in Caracas"
    assert await article.locator(".post-tags a").all_inner_texts() == ["#economy", "#markets"]
    assert await article.locator(".post-author").count() == 0
    # The same post drawn by the server, after a reload, reads the same.
    live_html = await article.evaluate("(a) => a.querySelector('.post-bylines').outerHTML")
    await api.client.patch(f"/api/posts/{later['id']}", json={"tags": ["markets"]})
    await _until(page, ["Jobs report"])
    await api.client.patch(f"/api/posts/{later['id']}", json={"tags": ["economy"]})
    await _until(page, ["Markets rally", "Jobs report"])
    await page.reload()
    server_html = await page.locator(f"#post-{later['id']} .post-bylines").evaluate(
        "(e) => e.outerHTML")
    def tight(html: str) -> str:
        return re.sub(r">\s+<", "><", " ".join(html.split()))

    assert tight(live_html) == tight(server_html)
    assert await axe_violations(page) == []


async def test_a_late_approved_key_event_goes_on_top_as_the_server_lists_it(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        database_url: str) -> None:
    """A contributor's post written before others (a smaller id) goes out when approved:
    the open page puts it first in the key events and first among the held "new updates",
    as the server lists it on a reload (newest first by the time each went out)."""
    db = Database(database_url)
    try:
        carol = await make_contributor(db, "carol")
    finally:
        await db.dispose()
    await api.stream("vote")
    for i in range(12):
        await api.post("vote", f"Update {i}\n\n" + "More words here. " * 12)
    r = await api.client.post("/api/streams/vote/posts", json={"body": "From the north gate"},
                              headers={"Authorization": f"Bearer {carol.token}"})
    assert r.status_code == 201, r.text
    waiting = r.json()["id"]
    r = await api.client.post("/api/streams/vote/posts", json={"body": "Key: turnout record",
                                                               "pinned": True})
    assert r.status_code == 201, r.text
    page = await _live(new_page, f"{server.base}/live/vote",
                       viewport={"width": 800, "height": 600})
    await page.evaluate("window.scrollTo(0, 2500)")
    await api.post("vote", "Held: newer than the key event")
    r = await api.client.post(f"/api/posts/{waiting}/approve")
    assert r.status_code == 200, r.text
    r = await api.client.patch(f"/api/posts/{waiting}", json={"pinned": True})
    assert r.status_code == 200, r.text
    keys = page.locator("#key-events-list .key-headline")
    await page.wait_for_function(
        "() => document.querySelectorAll('#key-events-list li').length === 2", timeout=WAIT_MS)
    assert await keys.all_inner_texts() == ["From the north gate", "Key: turnout record"]
    await page.wait_for_function(
        "() => document.querySelector('#new-updates').innerText.includes('2 new updates')",
        timeout=WAIT_MS)
    await page.locator("#new-updates").click()
    assert (await feed_texts(page))[:3] == [
        "From the north gate", "Held: newer than the key event", "Key: turnout record"]
    await page.reload()
    assert await keys.all_inner_texts() == ["From the north gate", "Key: turnout record"]
    assert (await feed_texts(page))[:3] == [
        "From the north gate", "Held: newer than the key event", "Key: turnout record"]
