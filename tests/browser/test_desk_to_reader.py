"""The whole path in two browsers: an editor at the desk, a reader on the live page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import EditorLogin
from tests.integration.conftest import Api, LiveServer

WAIT_MS = 15_000


async def test_desk_posts_reach_an_open_reader_page(
        server: LiveServer, api: Api, editor: EditorLogin,
        new_page: Callable[..., Any]) -> None:
    """An editor signs in and posts; the reader's page shows it within a second without
    reload; the desk's edit, pin and delete reach it too."""
    await api.stream("desk-to-reader")
    reader = await new_page()
    await reader.goto(f"{server.base}/live/desk-to-reader")
    await reader.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)
    await reader.evaluate("() => { window.__sameDocument = true; }")

    desk = await new_page()
    await sign_in(desk, server.base, editor.username)
    await desk.goto(f"{server.base}/editor/streams/desk-to-reader")
    await expect(desk.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    text = desk.get_by_label("Text", exact=True)
    await text.fill("Polls **closed** at 10pm")
    await text.press("Control+Enter")
    post = reader.locator("#feed > article").first
    # Within a second of the key press, including the desk's own request.
    await expect(post.locator(".post-body strong")).to_have_text("closed", timeout=1000)
    post_id = await post.get_attribute("data-id")

    mine = desk.locator(f"#post-{post_id}")
    await mine.get_by_role("link", name="Edit").click()
    await mine.get_by_label("Edit post").fill("Polls closed at 10pm; counting begins")
    await mine.get_by_role("button", name="Save").click()
    await expect(post.locator(".post-body")).to_have_text(
        "Polls closed at 10pm; counting begins", timeout=WAIT_MS)
    await expect(post.locator(".post-updated")).to_contain_text("Updated", timeout=WAIT_MS)

    await mine.get_by_role("button", name="Pin").click()
    await expect(reader.locator(f"#key-events-list li[data-id='{post_id}']")).to_contain_text(
        "counting begins", timeout=WAIT_MS)
    await expect(post.locator(".key-mark")).to_be_visible()

    await mine.get_by_role("link", name="Delete").click()
    await mine.get_by_role("button", name="Yes, delete").click()
    await expect(reader.locator("#feed > article")).to_have_count(0, timeout=WAIT_MS)
    await expect(reader.locator("#key-events")).to_be_hidden()
    assert await reader.evaluate("() => window.__sameDocument") is True
