"""Presence on the desk in Chromium: two editors signed in on one story, one editing a
post, the other seeing it live; readers counted on the page.

``BULLETIN_SCREENSHOTS=<folder>`` also saves the second editor's desk, at desktop and
phone sizes, with the presence shown (to look at, not compared).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from bulletin.store.db import Database
from tests.browser.conftest import sign_in
from tests.conftest import EditorLogin, make_editor
from tests.integration.conftest import Api, LiveServer

WAIT_MS = 15_000
SCREENSHOTS = os.environ.get("BULLETIN_SCREENSHOTS")


async def desk(new_page: Callable[..., Any], server: LiveServer, who: str, slug: str,
               **context: Any) -> Any:
    """``who``'s desk page for the stream, following it live."""
    page = await new_page(**context)
    await sign_in(page, server.base, who)
    await page.goto(f"{server.base}/editor/streams/{slug}")
    await expect(page.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    return page


async def test_an_editor_sees_who_else_is_on_the_story_and_what_they_edit(
        start_server: Callable[..., Any], editor: EditorLogin, database_url: str,
        new_page: Callable[..., Any]) -> None:
    """When Alice starts editing a post, Bob's desk says "Alice is editing this post" on
    it and lists her among the editors on the story; Alice's own desk does not flag her
    own editing; when she cancels, the flag goes. Readers appear as "N reading now", live on
the story and on the streams list."""
    server = await start_server(reader_count_seconds=0.3, presence_seconds=0.5)
    db = Database(database_url)
    try:
        await make_editor(db, "bob")
    finally:
        await db.dispose()
    api = Api(server.base, editor)
    await api.stream("vote")
    first = await api.post("vote", "Polls are open")
    await api.post("vote", "Turnout is high")
    await api.client.aclose()
    post = first["post"]["id"] if "post" in first else first["id"]

    alice = await desk(new_page, server, "alice", "vote")
    bob = await desk(new_page, server, "bob", "vote")
    bob_list = bob.locator("#editors-here")
    await expect(bob_list).to_be_visible(timeout=WAIT_MS)
    await expect(bob_list).to_contain_text("Alice viewing")
    await expect(alice.locator("#editors-here")).to_contain_text("Bob viewing")

    await alice.locator(f"#post-{post}").get_by_role("link", name="Edit").click()
    flag = bob.locator(f"#post-{post} .post-presence")
    await expect(flag).to_have_text("Alice is editing this post", timeout=WAIT_MS)
    await expect(bob_list).to_contain_text("Alice editing “Polls are open”")
    await expect(bob.locator(".post-presence")).to_have_count(1)
    await expect(alice.locator(".post-presence")).to_have_count(0)

    reader = await new_page()
    await reader.goto(f"{server.base}/live/vote")
    await expect(bob.locator("#readers-now")).to_have_text("1 reading now", timeout=WAIT_MS)
    listing = await new_page()
    await sign_in(listing, server.base, "bob")
    await expect(listing.locator(".stream-list li", has_text="Vote")).to_contain_text(
        "1 reading now")
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        await bob.set_viewport_size({"width": 1280, "height": 800})
        await bob.screenshot(path=str(folder / "desk-presence.png"))
        phone = await desk(new_page, server, "bob", "vote",
                           viewport={"width": 390, "height": 844}, device_scale_factor=3)
        await expect(phone.locator(f"#post-{post} .post-presence")).to_be_visible(
            timeout=WAIT_MS)
        await expect(phone.locator("#readers-now")).to_have_text("1 reading now",
                                                                 timeout=WAIT_MS)
        await phone.screenshot(path=str(folder / "desk-presence-phone.png"), full_page=True)
        await phone.close()

    await alice.locator(f"#post-{post}").get_by_role("button", name="Cancel").click()
    await expect(flag).to_have_count(0, timeout=WAIT_MS)
    await expect(bob_list).to_contain_text("Alice viewing")
    await alice.close()
    await expect(bob_list).to_be_hidden(timeout=WAIT_MS)
    await reader.close()
    await expect(bob.locator("#readers-now")).to_have_text("0 reading now", timeout=WAIT_MS)
