"""Drafts on the server in Chromium: one editor on two devices (two browser contexts)
finds the draft typed on the other, posting it clears it on both, a newer draft from the
other device is never overwritten silently, and another editor's desk never shows it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from bulletin.store.db import Database
from tests.browser.conftest import ConsoleErrors, sign_in
from tests.browser.test_desk_photos import api_photo
from tests.browser.test_editor_desk import WAIT_MS, open_stream
from tests.conftest import make_editor
from tests.integration.conftest import Api, LiveServer

# Set to a folder to keep the desktop and phone screenshots of a restored draft.
SHOTS = os.environ.get("BULLETIN_SCREENSHOTS")
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


async def server_draft(api: Api, slug: str, body: str | None) -> dict[str, Any] | None:
    """Wait until the server's draft has ``body`` (None: until there is no draft); 20 s at
    most (two quiet retries take 7 s)."""
    found: dict[str, Any] | None = None
    for _ in range(200):
        r = await api.client.get(f"/api/streams/{slug}/draft")
        found = r.json() if r.status_code == 200 else None
        if (found is None and body is None) or (found is not None and found["body"] == body):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"the server's draft is {found!r}, not {body!r}")


async def test_a_draft_typed_on_one_device_is_found_on_the_other_and_posting_clears_it(
        server: LiveServer, api: Api, database_url: str,
        new_page: Callable[..., Any]) -> None:
    """Typed on the laptop, the draft reaches the server a moment later and the phone
    restores it with its key event and headline, saying so; another editor's desk shows
    none of it; posted from the phone, it is gone on the laptop after a reload."""
    await api.stream("match")
    laptop = await open_stream(new_page, server, "match", **DESKTOP)
    await laptop.get_by_label("Text", exact=True).fill("Red card, 61 minutes")
    await laptop.get_by_label("Key event").check()
    await laptop.get_by_label("Headline").fill("Sent off")
    key = await laptop.locator("input[name=idempotency_key]").input_value()
    saved = await server_draft(api, "match", "Red card, 61 minutes")
    assert saved is not None and saved["pinned"] and saved["headline"] == "Sent off"
    assert saved["key"] == key

    phone = await open_stream(new_page, server, "match", **PHONE)
    text = phone.get_by_label("Text", exact=True)
    await expect(text).to_have_value("Red card, 61 minutes", timeout=WAIT_MS)
    await expect(phone.locator("#compose-status")).to_have_text(
        "Your draft from another device was restored.")
    await expect(phone.get_by_label("Key event")).to_be_checked()
    await expect(phone.get_by_label("Headline")).to_have_value("Sent off")
    assert await phone.locator("input[name=idempotency_key]").input_value() == key

    db = Database(database_url)
    try:
        await make_editor(db, "bob")
    finally:
        await db.dispose()
    bob = await new_page(**DESKTOP)
    await sign_in(bob, server.base, "bob")
    await bob.goto(f"{server.base}/editor/streams/match")
    await expect(bob.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    await bob.wait_for_timeout(500)  # the desk's look for a server draft has answered
    await expect(bob.get_by_label("Text", exact=True)).to_have_value("")
    await expect(bob.locator("#compose-status")).to_have_text("")

    await text.press("Control+Enter")
    await expect(phone.locator("#compose-status")).to_have_text("Posted.", timeout=WAIT_MS)
    await server_draft(api, "match", None)
    await laptop.reload()
    await expect(laptop.locator("#compose-status")).to_have_text(
        "Your draft was posted or deleted on another device.", timeout=WAIT_MS)
    await expect(laptop.get_by_label("Text", exact=True)).to_have_value("")
    await expect(laptop.get_by_label("Headline")).to_have_value("")
    await expect(laptop.get_by_label("Key event")).not_to_be_checked()
    posts = (await api.client.get("/api/streams/match/posts")).json()["posts"]
    assert [(p["body"], p["pinned"]) for p in posts] == [("Red card, 61 minutes", True)]
    await laptop.get_by_label("Text", exact=True).fill("Second half under way")
    await server_draft(api, "match", "Second half under way")


async def test_a_newer_draft_from_the_other_device_is_kept_until_the_editor_chooses(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """Both devices have version 1; the phone saves version 2; the laptop's next save is
    refused, the laptop says a newer draft was kept and keeps its own text; "Use the newer
    draft" brings the phone's in, and "Keep this one instead" saves over it."""
    console.allowed.append("status of 412")  # the laptop's refused saves
    await api.stream("match")
    laptop = await open_stream(new_page, server, "match", **DESKTOP)
    await laptop.get_by_label("Text", exact=True).fill("Goal")
    await server_draft(api, "match", "Goal")
    phone = await open_stream(new_page, server, "match", **PHONE)
    await expect(phone.get_by_label("Text", exact=True)).to_have_value("Goal",
                                                                       timeout=WAIT_MS)
    await phone.get_by_label("Text", exact=True).fill("Goal! 1-0, Silva")
    await server_draft(api, "match", "Goal! 1-0, Silva")

    await laptop.get_by_label("Text", exact=True).fill("Goal by Silva")
    notice = laptop.locator(".draft-sync[role=alert]")
    await expect(notice).to_contain_text("A newer draft from another device was kept",
                                         timeout=WAIT_MS)
    await expect(laptop.get_by_label("Text", exact=True)).to_have_value("Goal by Silva")
    assert (await server_draft(api, "match", "Goal! 1-0, Silva")) is not None
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before I/O)
        await notice.scroll_into_view_if_needed()
        await laptop.screenshot(path=str(Path(SHOTS) / "desk-draft-conflict.png"))
    await laptop.get_by_role("button", name="Use the newer draft").click()
    await expect(laptop.get_by_label("Text", exact=True)).to_have_value("Goal! 1-0, Silva")
    await expect(notice).to_be_hidden()

    await phone.get_by_label("Text", exact=True).fill("Goal! 1-0, Silva (62')")
    await server_draft(api, "match", "Goal! 1-0, Silva (62')")
    await laptop.get_by_label("Text", exact=True).fill("Goal! 1-0")
    await expect(notice).to_be_visible(timeout=WAIT_MS)
    await laptop.get_by_role("button", name="Keep this one instead").click()
    await server_draft(api, "match", "Goal! 1-0")
    await expect(laptop.get_by_label("Text", exact=True)).to_have_value("Goal! 1-0")


async def test_a_restored_draft_shows_its_photos_and_names_those_left_on_the_other_device(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A server draft with an uploaded photo and one still uploading elsewhere is restored
    with the photo (its alt text and caption) and a line naming the other one, on a
    laptop and a phone, without sideways scroll. Screenshots go to $BULLETIN_SCREENSHOTS."""
    await api.stream("march")
    photo = await api_photo(api, "march")
    r = await api.client.put("/api/streams/march/draft", json={
        "body": "Thousands on the avenue, heading for the palace.", "key": "k-march",
        "headline": "The march", "tags": ["march"],
        "media": [{"id": photo["id"], "alt": "Marchers on the avenue",
                   "caption": "Avenida Urdaneta, 11:40", "credit": "Ana Pérez"}],
        "uploading": ["IMG_0042.HEIC"]})
    assert r.status_code == 200, r.text
    for name, context in [("desktop", DESKTOP), ("phone", PHONE)]:
        page = await open_stream(new_page, server, "march", **context)
        status = page.locator("#compose-status")
        await expect(status).to_contain_text(
            "Your draft from another device was restored, with its photo.", timeout=WAIT_MS)
        await expect(status).to_contain_text(
            "“IMG_0042.HEIC” was still uploading on the other device and is only there")
        await expect(page.get_by_label("Text", exact=True)).to_have_value(
            "Thousands on the avenue, heading for the palace.")
        rows = page.locator("#compose-photos .attach-item")
        await expect(rows).to_have_count(1)
        await expect(rows.first.get_by_label("Alt text")).to_have_value(
            "Marchers on the avenue")
        await expect(page.locator("#preview-photos img")).to_have_count(1, timeout=WAIT_MS)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, name
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before I/O)
            await page.locator("#compose-heading").scroll_into_view_if_needed()
            await page.screenshot(path=str(Path(SHOTS) / f"desk-draft-{name}.png"),
                                  full_page=True)
        await page.close()
    # Opening the pages saved nothing over the draft: it is the same version.
    after = (await api.client.get("/api/streams/march/draft")).json()
    assert after["version"] == 1 and after["uploading"] == ["IMG_0042.HEIC"]


async def test_a_failed_save_is_retried_quietly_and_loses_nothing(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """While the server cannot be reached the desk says nothing alarming and keeps the
    text (a reload brings it back from this browser); once it can, the draft reaches the
    server without the editor doing anything."""
    console.allowed.append("Failed to load resource")  # the saves cut off on purpose
    await api.stream("match")
    page = await open_stream(new_page, server, "match", **DESKTOP)
    failed: list[str] = []

    async def cut(route: Any) -> None:
        if route.request.method == "PUT" and len(failed) < 2:
            failed.append(route.request.method)
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await page.route("**/api/streams/match/draft", cut)
    await page.get_by_label("Text", exact=True).fill("Penalty to the visitors")
    await server_draft(api, "match", "Penalty to the visitors")
    assert len(failed) == 2
    await expect(page.locator("#compose-error")).to_be_hidden()
    await expect(page.locator(".draft-sync")).to_be_hidden()
    await expect(page.locator("#compose-status")).to_have_text("")
    await page.reload()
    await expect(page.get_by_label("Text", exact=True)).to_have_value("Penalty to the visitors")
