"""The desk's headline, tags and bylines in Chromium: posting them with the script (the
draft keeps them through a reload), and a person's photo uploaded on the People page."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image
from playwright.async_api import expect

from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import EditorLogin
from tests.integration.conftest import Api, LiveServer

from .test_editor_desk import WAIT_MS, open_stream


async def test_a_post_goes_out_with_its_headline_tags_and_bylines(
        server: LiveServer, api: Api, editor: EditorLogin,
        new_page: Callable[..., Any]) -> None:
    """Typed and ticked on the desk, kept in the draft through a reload, sent with the
    post: the post list and the API show them, and the fields empty after posting; edit
    in place shows them filled and saves changes to them."""
    await api.stream("vote")
    zoe = (await api.client.post("/api/people", json={
        "name": "Zoe Mendes", "description": "Reporter in Caracas"})).json()
    page = await open_stream(new_page, server, "vote")
    await page.get_by_label("Text").fill("Turnout is high in the capital.")
    await page.get_by_label("Headline").fill("Turnout passes 60%")
    await page.get_by_label("Tags").fill("Turnout, #polls")
    await page.get_by_label("Zoe Mendes").check()
    await page.reload()
    await expect(page.locator("#compose-status")).to_contain_text("restored", timeout=WAIT_MS)
    assert await page.get_by_label("Headline").input_value() == "Turnout passes 60%"
    assert await page.get_by_label("Zoe Mendes").is_checked()
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_have_text("Posted.", timeout=WAIT_MS)
    item = page.locator("#posts > li").first
    await expect(item.locator(".post-headline-line")).to_have_text("Turnout passes 60%")
    await expect(item.locator(".post-tag-list")).to_contain_text("#turnout #polls")
    await expect(item.locator(".post-bylines")).to_contain_text("Zoe Mendes")
    assert await page.get_by_label("Headline").input_value() == ""
    assert not await page.get_by_label("Zoe Mendes").is_checked()
    post = (await api.client.get("/api/streams/vote/posts")).json()["posts"][0]
    assert (post["headline"], post["tags"], [c["id"] for c in post["contributors"]]) == \
        ("Turnout passes 60%", ["turnout", "polls"], [zoe["id"]])
    # Edit in place: the fields come filled from the post, and a save changes them.
    await item.get_by_role("link", name="Edit").click()
    headline = item.get_by_label("Headline")
    assert await headline.input_value() == "Turnout passes 60%"
    assert await item.get_by_label("Tags").input_value() == "turnout, polls"
    assert await item.get_by_label("Zoe Mendes").is_checked()
    await headline.fill("Turnout passes 61%")
    await item.get_by_label("Zoe Mendes").uncheck()
    await item.get_by_role("button", name="Save").click()
    await expect(item.locator(".post-headline-line")).to_have_text("Turnout passes 61%",
                                                                   timeout=WAIT_MS)
    await expect(item.locator(".post-bylines")).to_be_hidden()
    post = (await api.client.get(f"/api/posts/{post['id']}")).json()
    assert (post["headline"], post["contributors"], post["revision"]) == \
        ("Turnout passes 61%", [], 2)


async def test_a_persons_photo_is_uploaded_on_the_people_page(
        server: LiveServer, editor: EditorLogin, new_page: Callable[..., Any]) -> None:
    """Choosing a photo uploads it at once; saving the person keeps it; the page has no
    serious accessibility problem."""
    page = await new_page(bypass_csp=True)
    await sign_in(page, server.base, "alice")
    await page.goto(f"{server.base}/editor/people")
    out = io.BytesIO()
    Image.new("RGB", (400, 400), (200, 60, 30)).save(out, format="JPEG")
    await page.get_by_label("Name").fill("Zoe Mendes")
    await page.get_by_label("Description").fill("Reporter in Caracas")
    await page.get_by_label("Photo").set_input_files(
        {"name": "zoe.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()})
    await expect(page.locator(".person-photo-status")).to_contain_text("Photo ready",
                                                                       timeout=WAIT_MS)
    await page.get_by_role("button", name="Add person").click()
    await expect(page.locator("#flash")).to_contain_text("can now sign posts")
    photo = page.locator(".people-list img.byline-photo")
    await expect(photo).to_have_count(1)
    assert "/media/" in (await photo.get_attribute("src") or "")
    assert await axe_violations(page) == []
