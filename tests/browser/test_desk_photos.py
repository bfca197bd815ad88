"""Photos on the desk in Chromium: picked, dropped and pasted onto the composer, uploaded at
once with progress, alt text required, kept with the draft through failures and reloads,
a failed upload retried without a second copy, Ctrl+Enter waiting for uploads, photos in
the post list, the preview and inline editing, and the photo reaching an open reader page.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import expect
from sqlmodel import func, select

from bulletin.store.db import Database
from bulletin.store.models import Media
from tests.browser.conftest import ConsoleErrors, axe_violations, sign_in
from tests.browser.test_editor_desk import WAIT_MS, open_stream
from tests.integration.conftest import Api, LiveServer

FILE_INPUT = "#compose-photos input[type=file]"
ROWS = "#compose-photos .attach-item"
# Set to a folder to keep the desktop and phone screenshots of the compose form.
SHOTS = os.environ.get("BULLETIN_SCREENSHOTS")


def jpeg(width: int = 800, height: int = 600, colour: tuple[int, int, int] = (20, 90, 200)
         ) -> bytes:
    """A small plain photo."""
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), colour)
    image.paste((230, 200, 10), (0, 0, width // 3, height // 3))
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def noisy_jpeg(width: int = 1000, height: int = 800) -> bytes:
    """A photo that JPEG cannot shrink (about a megabyte): slow enough to upload when the
    network is throttled that progress can be seen."""
    noise = random.Random(12).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(out, format="JPEG", quality=92)
    return out.getvalue()


def photo_file(name: str, data: bytes) -> dict[str, Any]:
    """A file for set_input_files."""
    return {"name": name, "mimeType": "image/jpeg", "buffer": data}


async def media_rows(database_url: str) -> int:
    """How many photos the server has stored."""
    db = Database(database_url)
    try:
        async with db.read() as session:
            count: int = (await session.exec(select(func.count()).select_from(Media))).one()
            return count
    finally:
        await db.dispose()


async def throttle_uploads(page: Any, bytes_per_second: int) -> Any:
    """Slow the page's uploads (Chromium's network emulation); -1 lifts the limit."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second})
    return cdp


async def drop_photo(page: Any, selector: str, name: str, data: bytes) -> bool:
    """Drag a photo file onto an element as the browser would; whether it was highlighted
    while dragged over."""
    highlighted: bool = await page.evaluate(
        """([selector, name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, {type: "image/jpeg"}));
            const target = document.querySelector(selector);
            const fire = (type) => target.dispatchEvent(
                new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
            fire("dragenter");
            fire("dragover");
            const shown = target.closest(".is-dropping") !== null;
            fire("drop");
            return shown && !document.querySelector(".is-dropping");
        }""", [selector, name, base64.b64encode(data).decode()])
    return highlighted


async def paste_photo(page: Any, selector: str, name: str, data: bytes) -> bool:
    """Paste a photo from the clipboard into an element; whether the page took it (and
    so kept the browser from pasting anything itself)."""
    taken: bool = await page.evaluate(
        """([selector, name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, {type: "image/png"}));
            const event = new ClipboardEvent("paste",
                {bubbles: true, cancelable: true, clipboardData: data});
            document.querySelector(selector).dispatchEvent(event);
            return event.defaultPrevented;
        }""", [selector, name, base64.b64encode(data).decode()])
    return taken


async def uploaded(page: Any, count: int) -> None:
    """Wait until the composer has `count` photos, every one uploaded."""
    await expect(page.locator(ROWS)).to_have_count(count, timeout=WAIT_MS)
    await expect(page.locator(f"{ROWS}[data-state=done]")).to_have_count(count, timeout=WAIT_MS)


async def test_a_picked_photo_shows_progress_and_reaches_an_open_reader_page(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Picking a photo shows its thumbnail and upload progress at once; posted with its
    alt, caption and credit it is in the desk's list and on an open reader page as a
    <figure>; the composer and the stored draft are then empty."""
    await api.stream("march")
    reader = await new_page()
    await reader.goto(f"{server.base}/live/march")
    await reader.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)

    page = await open_stream(new_page, server, "march")
    await expect(page.locator("#compose-photos-off")).to_have_count(0)
    cdp = await throttle_uploads(page, 250_000)
    await page.set_input_files(FILE_INPUT, [photo_file("march.jpg", noisy_jpeg())])
    row = page.locator(ROWS)
    await expect(row).to_have_count(1)
    thumb = row.locator(".attach-thumb img")
    await expect(thumb).to_have_count(1, timeout=WAIT_MS)
    assert (await thumb.get_attribute("src") or "").startswith("data:image/jpeg")
    await page.wait_for_function(
        """() => { const p = document.querySelector("#compose-photos progress");
                   return p && !p.hidden && p.value > 0 && p.value < 100; }""",
        timeout=WAIT_MS)
    await expect(row.locator(".attach-state-text")).to_contain_text("Uploading")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    await uploaded(page, 1)
    await expect(page.locator("#photo-announcer")).to_have_text("Photo 1 uploaded.")
    await expect(row.locator("progress")).to_be_hidden()

    await row.get_by_label("Photo 1: Alt text (required)").fill("Marchers on the avenue")
    await row.get_by_label("Photo 1: Caption (optional)").fill("Avenida Urdaneta at noon")
    await row.get_by_label("Photo 1: Credit (optional)").fill("Ana Ruiz")
    text = page.get_by_label("Text", exact=True)
    await text.fill("The march reaches the **avenue**")
    figure = page.locator("#preview-photos figure.photo")
    await expect(figure.locator("img")).to_have_attribute("alt", "Marchers on the avenue",
                                                         timeout=WAIT_MS)
    await expect(figure.locator("figcaption")).to_contain_text("Avenida Urdaneta at noon")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_have_text("Posted.")

    mine = page.locator("#posts > li").first
    await expect(mine.locator(".post-photos img")).to_have_attribute(
        "alt", "Marchers on the avenue")
    shown = reader.locator("#feed > article").first.locator("figure.photo")
    await expect(shown.locator("img")).to_have_attribute("alt", "Marchers on the avenue",
                                                        timeout=WAIT_MS)
    await expect(shown.locator("figcaption")).to_contain_text("Ana Ruiz")
    await expect(row).to_have_count(0)
    await expect(text).to_have_value("")
    assert await page.evaluate("() => localStorage.getItem('bulletin:draft:march')") is None
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [(m["alt"], m["caption"], m["credit"]) for m in posts[0]["media"]] == [
        ("Marchers on the avenue", "Avenida Urdaneta at noon", "Ana Ruiz")]


async def test_photos_dropped_and_pasted_onto_the_composer_are_posted_in_order(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A photo dragged onto the composer (highlighted while over it) and one pasted into
    the text box are attached and uploaded; the post carries both, in that order."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    assert await drop_photo(page, "section.compose", "dropped.jpg", jpeg())
    assert await paste_photo(page, "#compose-body", "image.png", jpeg(colour=(200, 30, 30)))
    await uploaded(page, 2)
    rows = page.locator(ROWS)
    await expect(rows.nth(0).locator(".attach-name")).to_have_text("dropped.jpg")
    await expect(rows.nth(1).locator(".attach-name")).to_have_text("image.png")
    await rows.nth(0).get_by_label("Photo 1: Alt text (required)").fill("Riot police line")
    await rows.nth(1).get_by_label("Photo 2: Alt text (required)").fill("A burning barricade")
    text = page.get_by_label("Text", exact=True)
    await text.fill("Two views of the square")
    await text.press("Control+Enter")
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["Riot police line", "A burning barricade"]
    await expect(page.locator("#posts > li").first.locator(".post-photos img")).to_have_count(2)


async def test_text_pasted_with_a_picture_of_itself_stays_text(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A paste that carries text (a word processor adds a picture of the selection) is
    left to the browser: nothing is attached."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    taken = await page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.setData("text/plain", "Copied from the wire");
            data.items.add(new File([new Uint8Array([1, 2, 3])], "image.png", {type: "image/png"}));
            const event = new ClipboardEvent("paste",
                {bubbles: true, cancelable: true, clipboardData: data});
            document.querySelector("#compose-body").dispatchEvent(event);
            return event.defaultPrevented;
        }""")
    assert taken is False
    await expect(page.locator(ROWS)).to_have_count(0)


async def test_alt_text_is_required_before_anything_is_posted(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Posting with a photo that has no alt text is stopped with a clear message, the
    focus on the field, and nothing published; with alt text it posts."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    await page.set_input_files(FILE_INPUT, [photo_file("crowd.jpg", jpeg())])
    await uploaded(page, 1)
    text = page.get_by_label("Text", exact=True)
    await text.fill("The crowd grows")
    await page.get_by_role("button", name="Post", exact=True).click()
    error = page.locator("#compose-error")
    await expect(error).to_contain_text("Add alt text to photo 1")
    alt = page.get_by_label("Photo 1: Alt text (required)")
    await expect(alt).to_be_focused()
    await expect(alt).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(f"{ROWS} .attach-alt-error")).to_be_visible()
    await text.press("Control+Enter")
    await expect(error).to_contain_text("Add alt text to photo 1")
    assert (await api.client.get("/api/streams/march/posts")).json()["posts"] == []

    await alt.fill("Thousands fill the square")
    await expect(alt).to_have_attribute("aria-invalid", "false")
    await expect(page.locator(f"{ROWS} .attach-alt-error")).to_be_hidden()
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    await expect(error).to_be_hidden()
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["Thousands fill the square"]


async def test_a_photo_with_a_caption_and_no_text_is_a_post(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A photo needs no text to be posted; without text or photo nothing is posted."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    await page.get_by_role("button", name="Post", exact=True).click()
    error = page.locator("#compose-error")
    await expect(error).to_contain_text("Write something or add a photo")
    await page.set_input_files(FILE_INPUT, [photo_file("square.jpg", jpeg())])
    await uploaded(page, 1)
    await page.get_by_label("Photo 1: Alt text (required)").fill("The square at dusk")
    await page.get_by_label("Caption (optional)").fill("Plaza Bolívar, 6 p.m.")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [(p["body"], [m["caption"] for m in p["media"]]) for p in posts] == [
        ("", ["Plaza Bolívar, 6 p.m."])]


async def test_an_upload_whose_answer_is_lost_is_retried_without_a_second_photo(
        server: LiveServer, api: Api, database_url: str, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """The server stores the photo but the answer never arrives: the photo shows as
    failed with Retry (and the live region says so); Retry sends the same
    Idempotency-Key and the server keeps one photo, not two."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    console.allowed.append("Failed to load resource")
    keys: list[str] = []

    async def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) > 1:
            await route.continue_()
            return
        response = await route.fetch()  # the server stores the photo...
        assert response.status == 201
        await route.abort("connectionreset")  # ...but the desk never hears back

    await page.route("**/api/media", lose_first_answer)
    await page.set_input_files(FILE_INPUT, [photo_file("square.jpg", jpeg())])
    row = page.locator(ROWS)
    await expect(row).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
    await expect(row.locator(".attach-state-text")).to_contain_text("Upload failed")
    await expect(page.locator("#photo-announcer")).to_contain_text("Photo 1 did not upload")
    assert await media_rows(database_url) == 1

    await row.get_by_label("Photo 1: Alt text (required)").fill("The square at dusk")
    text = page.get_by_label("Text", exact=True)
    await text.fill("Dusk on the square")
    await text.press("Control+Enter")
    await expect(page.locator("#compose-error")).to_contain_text("Photo 1 did not upload")
    await expect(row.get_by_role("button", name="Retry photo 1")).to_be_focused()
    await row.get_by_role("button", name="Retry photo 1").click()
    await uploaded(page, 1)
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    assert await media_rows(database_url) == 1
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["The square at dusk"]


async def test_an_upload_that_never_reached_the_server_is_retried_once(
        server: LiveServer, api: Api, database_url: str, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """With the connection down the upload fails; Retry uploads it with the same key and
    the server has exactly one photo."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    console.allowed.append("Failed to load resource")
    keys: list[str] = []

    async def down_at_first(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await page.route("**/api/media", down_at_first)
    await page.set_input_files(FILE_INPUT, [photo_file("square.jpg", jpeg())])
    row = page.locator(ROWS)
    await expect(row).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
    assert await media_rows(database_url) == 0
    await row.get_by_role("button", name="Retry photo 1").click()
    await uploaded(page, 1)
    assert keys[0] == keys[1]
    assert await media_rows(database_url) == 1


async def test_the_draft_keeps_its_photos_through_a_reload(
        server: LiveServer, api: Api, database_url: str,
        new_page: Callable[..., Any], console: ConsoleErrors) -> None:
    """Reloading mid-upload keeps the text, the uploaded photo (with its words) and the
    one still uploading (from IndexedDB), which is uploaded again with the same key."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    console.allowed.append("Failed to load resource")
    keys: list[str] = []
    page.on("request", lambda request: request.url.endswith("/api/media") and keys.append(
        request.headers.get("idempotency-key", "")))
    await page.set_input_files(FILE_INPUT, [photo_file("first.jpg", jpeg())])
    await uploaded(page, 1)
    rows = page.locator(ROWS)
    await rows.nth(0).get_by_label("Photo 1: Alt text (required)").fill("Marchers at the bridge")
    await rows.nth(0).get_by_label("Photo 1: Credit (optional)").fill("Ana Ruiz")
    text = page.get_by_label("Text", exact=True)
    await text.fill("From the bridge")

    cdp = await throttle_uploads(page, 50_000)
    await page.set_input_files(FILE_INPUT, [photo_file("second.jpg", noisy_jpeg())])
    await expect(rows.nth(1)).to_have_attribute("data-state", "uploading", timeout=WAIT_MS)
    await rows.nth(1).get_by_label("Photo 2: Alt text (required)").fill("The bridge from below")
    await page.wait_for_function(
        """() => JSON.parse(localStorage.getItem("bulletin:draft:march")).photos.length === 2""")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    await page.reload()

    await expect(text).to_have_value("From the bridge")
    await expect(page.locator("#compose-status")).to_contain_text("with its 2 photos")
    await uploaded(page, 2)
    await expect(rows.nth(0).get_by_label("Photo 1: Alt text (required)")).to_have_value(
        "Marchers at the bridge")
    await expect(rows.nth(0).get_by_label("Photo 1: Credit (optional)")).to_have_value("Ana Ruiz")
    await expect(rows.nth(1).get_by_label("Photo 2: Alt text (required)")).to_have_value(
        "The bridge from below")
    await expect(rows.nth(1).locator(".attach-name")).to_have_text("second.jpg")
    assert len(keys) == 3 and keys[1] == keys[2] != keys[0]
    await text.press("Control+Enter")
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["Marchers at the bridge",
                                                    "The bridge from below"]
    assert await media_rows(database_url) == 2
    stored = await page.evaluate(
        """() => new Promise((resolve) => {
            const open = indexedDB.open("bulletin-desk");
            open.onsuccess = () => {
                const request = open.result.transaction("photos").objectStore("photos").count();
                request.onsuccess = () => resolve(request.result);
            };
        })""")
    assert stored == 0


async def test_a_failed_post_keeps_its_photos(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """A post the server refuses keeps the text and the photos; the retry posts them."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    console.allowed.append("503")
    answers: list[int] = []

    async def unavailable_once(route: Any) -> None:
        answers.append(len(answers))
        if len(answers) == 1:
            await route.fulfill(status=503, content_type="application/json", body=(
                '{"error": {"code": "database_unavailable", "message": "the database is '
                'unavailable", "details": null}}'))
        else:
            await route.continue_()

    await page.route("**/api/streams/march/posts", unavailable_once)
    await page.set_input_files(FILE_INPUT, [photo_file("square.jpg", jpeg())])
    await uploaded(page, 1)
    await page.get_by_label("Photo 1: Alt text (required)").fill("The square")
    text = page.get_by_label("Text", exact=True)
    await text.fill("In the square")
    await text.press("Control+Enter")
    await expect(page.locator("#compose-error")).to_contain_text("Your text and photos are kept")
    await expect(page.locator(ROWS)).to_have_count(1)
    await expect(page.get_by_label("Photo 1: Alt text (required)")).to_have_value("The square")
    await text.press("Control+Enter")
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["The square"]


async def test_ctrl_enter_with_a_photo_uploading_posts_once_it_is_up(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Ctrl+Enter while a photo uploads says the post waits for it, and the post goes out
    with the photo once it is uploaded; "Don't post yet" stops the wait."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    release = asyncio.Event()

    async def held(route: Any) -> None:
        await release.wait()
        await route.continue_()

    await page.route("**/api/media", held)
    await page.set_input_files(FILE_INPUT, [photo_file("square.jpg", jpeg())])
    row = page.locator(ROWS)
    # (The held request never reports its bytes sent: uploading, not processing.)
    await expect(row).to_have_attribute("data-state", re.compile("uploading|processing"))
    await row.get_by_label("Photo 1: Alt text (required)").fill("The square")
    text = page.get_by_label("Text", exact=True)
    await text.fill("Live from the square")
    await text.press("Control+Enter")
    status = page.locator("#compose-status")
    await expect(status).to_contain_text("Waiting for a photo to finish uploading")
    await page.get_by_role("button", name="Don\u2019t post yet").click()
    await expect(status).to_contain_text("Not posted yet")
    await expect(page.get_by_role("button", name="Don\u2019t post yet")).to_be_hidden()
    await text.press("Control+Enter")
    await expect(status).to_contain_text("Waiting for a photo")
    await asyncio.sleep(0.3)
    assert (await api.client.get("/api/streams/march/posts")).json()["posts"] == []

    release.set()
    await expect(status).to_have_text("Posted.", timeout=WAIT_MS)
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [(p["body"], [m["alt"] for m in p["media"]]) for p in posts] == [
        ("Live from the square", ["The square"])]
    await expect(page.locator("#posts > li").first.locator(".post-photos img")).to_have_attribute(
        "alt", "The square")


async def api_photo(api: Api, slug: str, colour: tuple[int, int, int] = (20, 90, 200)
                    ) -> dict[str, Any]:
    """A photo uploaded through the API for a story."""
    r = await api.client.post("/api/media", data={"stream": slug},
                              files={"file": ("api.jpg", jpeg(colour=colour), "image/jpeg")})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def add_notices(page: Any, notices: list[dict[str, str]]) -> None:
    """Make the desk's preview answer carry these notices (as the server will for an
    image it removed), whatever the server in use says."""
    async def with_notices(route: Any) -> None:
        response = await route.fetch()
        body = await response.json()
        await route.fulfill(response=response, json={**body, "notices": notices})

    await page.route("**/editor/preview", with_notices)


async def test_the_preview_shows_the_servers_notices_under_it(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Notices in the preview's answer are listed under the preview in a status region,
    and go when the answer has none."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    await add_notices(page, [{"code": "insecure_image", "message":
                              "an http:// image was removed: only https images are shown"}])
    text = page.get_by_label("Text", exact=True)
    await text.fill("![map](http://example.com/map.png) The route")
    notices = page.locator("#preview-notices")
    await expect(notices).to_have_attribute("role", "status")
    await expect(notices.locator("li[data-code=insecure_image]")).to_have_text(
        "An http:// image was removed: only https images are shown", timeout=WAIT_MS)
    await expect(notices).to_contain_text("Check before posting")
    await page.unroute("**/editor/preview")
    await add_notices(page, [])
    await text.fill("The route")
    await expect(notices.locator("li")).to_have_count(0, timeout=WAIT_MS)
    await expect(notices).to_be_hidden()


async def test_editing_a_post_in_place_changes_its_photos(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A post arriving live shows its photo as a thumbnail with alt; Edit lists its
    photos to describe again, remove, or add to, with the same preview (photos and
    notices) as composing; Save sends them, and the list shows the new ones."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march")
    first = await api_photo(api, "march")
    r = await api.client.post("/api/streams/march/posts", json={
        "body": "The march sets off", "media": [{"id": first["id"], "alt": "Banners up"}]})
    post_id = r.json()["id"]
    item = page.locator(f"#post-{post_id}")
    await expect(item.locator(".post-photos img")).to_have_attribute("alt", "Banners up",
                                                                    timeout=WAIT_MS)
    await expect(item.locator(".post-photo-alt")).to_have_text("Banners up")

    await add_notices(page, [{"code": "embed_failed", "message": "the video could not be read"}])
    await item.get_by_role("link", name="Edit").click()
    rows = item.locator(".attach-item")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-state", "done")
    alt = rows.first.get_by_label("Photo 1: Alt text (required)")
    await expect(alt).to_have_value("Banners up")
    await expect(item.locator(".preview-notices li")).to_have_text(
        "The video could not be read", timeout=WAIT_MS)
    await expect(item.locator(".preview .post-body")).to_have_text("The march sets off")
    await alt.fill("Banners at the front of the march")
    await item.locator("input[type=file]").set_input_files(
        [photo_file("later.jpg", jpeg(colour=(200, 30, 30)))])
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    await expect(item.locator(".preview figure.photo")).to_have_count(2, timeout=WAIT_MS)

    # Saving with the new photo undescribed is stopped.
    await item.get_by_role("button", name="Save").click()
    await expect(item.locator(".post-editor .error-message[role=alert]")).to_contain_text(
        "Add alt text to photo 2")
    await expect(rows.nth(1).get_by_label("Photo 2: Alt text (required)")).to_be_focused()
    await rows.nth(1).get_by_label("Photo 2: Alt text (required)").fill("Police lines")
    await rows.nth(0).get_by_role("button", name="Remove photo 1").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first.get_by_role("button", name="Remove photo 1")).to_be_focused()
    await expect(item.locator(".preview figure.photo")).to_have_count(1, timeout=WAIT_MS)
    await expect(item.locator(".preview figure.photo img")).to_have_attribute(
        "alt", "Police lines", timeout=WAIT_MS)
    await item.get_by_label("Edit post").press("Control+Enter")
    await expect(item.locator(".post-editor")).to_have_count(0)
    await expect(item.locator(".post-photos img")).to_have_attribute("alt", "Police lines")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["Police lines"]
    assert posts[0]["media"][0]["id"] != first["id"] and posts[0]["revision"] == 2


async def test_editing_a_post_the_page_rendered_finds_its_photos(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """A post in the page as the server rendered it keeps its photos through an edit of
    its text (the editor knows them, from the page or from the API)."""
    await api.stream("march")
    photo = await api_photo(api, "march")
    r = await api.client.post("/api/streams/march/posts", json={
        "body": "Banners", "media": [{"id": photo["id"], "alt": "Banners up",
                                      "credit": "Ana Ruiz"}]})
    post_id = r.json()["id"]
    page = await open_stream(new_page, server, "march")
    item = page.locator(f"#post-{post_id}")
    await item.get_by_role("link", name="Edit").click()
    row = item.locator(".attach-item")
    await expect(row.get_by_label("Photo 1: Alt text (required)")).to_have_value("Banners up")
    await expect(row.get_by_label("Photo 1: Credit (optional)")).to_have_value("Ana Ruiz")
    await item.get_by_label("Edit post").fill("Banners at the front")
    await item.get_by_role("button", name="Save").click()
    await expect(item.locator(".post-editor")).to_have_count(0)
    await expect(item.locator(".post-body")).to_have_text("Banners at the front")
    await expect(item.locator(".post-photos img")).to_have_attribute("alt", "Banners up")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [(m["id"], m["alt"], m["credit"]) for m in posts[0]["media"]] == [
        (photo["id"], "Banners up", "Ana Ruiz")]


async def test_the_edit_page_without_javascript_shows_the_photos_it_keeps(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """The no-JavaScript edit page shows a post's photos with their alt and says that
    saving there keeps them."""
    await api.stream("march")
    photo = await api_photo(api, "march")
    r = await api.client.post("/api/streams/march/posts", json={
        "body": "Banners", "media": [{"id": photo["id"], "alt": "Banners up"}]})
    post_id = r.json()["id"]
    page = await new_page(java_script_enabled=False)
    await sign_in(page, server.base, "alice")
    await page.goto(f"{server.base}/editor/posts/{post_id}/edit")
    await expect(page.locator(".post-photos img")).to_have_attribute("alt", "Banners up")
    await expect(page.locator("main")).to_contain_text("Saving here keeps these photos")
    await page.get_by_label("Text").fill("Banners at the front")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#flash")).to_contain_text("Post updated.")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [m["alt"] for m in posts[0]["media"]] == ["Banners up"]


async def test_the_stream_page_draws_each_posts_thumbnails(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """The server-rendered post list shows each post's photos as thumbnails with their
    alt, without JavaScript too."""
    await api.stream("march")
    photo = await api_photo(api, "march")
    r = await api.client.post("/api/streams/march/posts", json={
        "body": "Banners", "media": [{"id": photo["id"], "alt": "Banners up"}]})
    post_id = r.json()["id"]
    page = await new_page(java_script_enabled=False)
    await sign_in(page, server.base, "alice")
    await page.goto(f"{server.base}/editor/streams/march")
    await expect(page.locator(f"#post-{post_id} .post-photos img")).to_have_attribute(
        "alt", "Banners up", timeout=1000)


async def test_without_javascript_the_desk_says_photos_need_it_and_posts_text(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """With JavaScript off the compose form says photos need it, and a text post still
    goes out through the plain form."""
    await api.stream("march")
    page = await new_page(java_script_enabled=False)
    await sign_in(page, server.base, "alice")
    await page.goto(f"{server.base}/editor/streams/march")
    await expect(page.locator("#compose-photos-off")).to_contain_text("Photos need JavaScript")
    await expect(page.locator("#compose-photos")).to_be_hidden()
    await expect(page.get_by_role("button", name="Don\u2019t post yet")).to_be_hidden()
    await page.get_by_label("Text", exact=True).fill("Text only, no script")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#flash")).to_contain_text("Posted.")
    posts = (await api.client.get("/api/streams/march/posts")).json()["posts"]
    assert [(p["body"], p["media"]) for p in posts] == [("Text only, no script", [])]


async def test_attached_photos_have_no_serious_accessibility_problems(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """axe finds nothing serious with photos attached: one uploaded, one failed, and
    the missing-alt error shown; the controls are reached with the keyboard."""
    await api.stream("march")
    page = await open_stream(new_page, server, "march", bypass_csp=True)
    console.allowed.append("Failed to load resource")
    calls: list[int] = []

    async def second_fails(route: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await page.route("**/api/media", second_fails)
    await page.set_input_files(FILE_INPUT, [photo_file("one.jpg", jpeg())])
    await uploaded(page, 1)
    await page.set_input_files(FILE_INPUT, [photo_file("two.jpg", jpeg(colour=(9, 9, 9)))])
    await expect(page.locator(ROWS).nth(1)).to_have_attribute("data-state", "failed",
                                                             timeout=WAIT_MS)
    text = page.get_by_label("Text", exact=True)
    await text.fill("Two photos")
    await text.press("Control+Enter")
    await expect(page.locator("#compose-error")).to_contain_text("Add alt text to photo 1")
    assert await axe_violations(page) == []

    # From the text box, Tab reaches "Add photos", then photo 1's buttons and fields as
    # they are laid out, with a visible focus ring.
    await text.focus()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Add photos")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Remove photo 1")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Photo 1: Alt text (required)")).to_be_focused()
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Add photos").press("Enter")
    assert (await chooser.value).is_multiple()


async def compose_with_two_photos(page: Any) -> Any:
    """The compose form with a text, one photo uploaded and described, and one
    uploading slowly; returns the CDP session throttling it."""
    await page.get_by_label("Text", exact=True).fill(
        "Armoured vehicles drive into the crowd on **Avenida Urdaneta**.")
    await page.set_input_files(FILE_INPUT, [photo_file("IMG_2041.jpg", jpeg(1600, 1200))])
    await uploaded(page, 1)
    await page.get_by_label("Photo 1: Alt text (required)").fill(
        "Two armoured vehicles among marchers holding flags")
    await page.get_by_label("Photo 1: Caption (optional)").fill("Avenida Urdaneta, 2 p.m.")
    await page.get_by_label("Photo 1: Credit (optional)").fill("Ana Ruiz / Bulletin")
    cdp = await throttle_uploads(page, 40_000)
    await page.set_input_files(FILE_INPUT, [photo_file("IMG_2042-from-the-bridge.jpg",
                                                       noisy_jpeg())])
    await page.wait_for_function(
        """() => { const p = document.querySelectorAll("#compose-photos progress")[1];
                   return p && p.value >= 10; }""", timeout=WAIT_MS)
    await page.get_by_label("Photo 2: Alt text (required)").fill("The march seen from the bridge")
    await expect(page.locator("#preview-photos figure")).to_have_count(2, timeout=WAIT_MS)
    return cdp


async def test_the_composer_with_photos_fits_a_phone(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """On a 390 px phone the composer with two photos has no sideways scroll and its
    buttons are on the screen; on a laptop too. Screenshots of both go to
    $BULLETIN_SCREENSHOTS when set."""
    for name, context in [
            ("desktop", {"viewport": {"width": 1280, "height": 800}}),
            ("phone", {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
                       "is_mobile": True, "has_touch": True})]:
        # A story each: the same editor's draft of one story follows them to the phone.
        await api.stream(f"march-{name}")
        page = await open_stream(new_page, server, f"march-{name}", **context)
        cdp = await compose_with_two_photos(page)
        width = context["viewport"]["width"]
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, name
        for button in ("Add photos", "Remove photo 2", "Post"):
            box = await page.get_by_role("button", name=button, exact=True).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (
                name, button)
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before I/O)
            await page.locator("#compose-heading").scroll_into_view_if_needed()
            await page.screenshot(path=str(Path(SHOTS) / f"desk-photos-{name}.png"),
                                  full_page=True)
        await cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        await uploaded(page, 2)
        await page.close()
