"""Posts that wait, in Chromium: a contributor submits on the desk, an editor approves it
in "Awaiting approval" and an open reader page shows it live; the contributor's own list
follows live; the compose form's "Schedule…" sends the editor's local time as UTC. The
desk's new sections are photographed at desktop and phone sizes (BULLETIN_SCREENSHOTS
names a folder to keep them in)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import expect

from bulletin.store.db import Database
from tests.browser.conftest import sign_in
from tests.conftest import EditorLogin
from tests.integration.conftest import Api, LiveServer
from tests.web.test_publishing import make_contributor

WAIT_MS = 15_000
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BULLETIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_a_contributors_post_approved_on_the_desk_reaches_an_open_reader_page(
        server: LiveServer, api: Api, editor: EditorLogin, database_url: str,
        new_page: Callable[..., Any], tmp_path: Path) -> None:
    """Carol submits; the reader sees nothing; Alice approves it on the desk and the
    reader's open page shows it live, above a post published while it waited (on the
    desks too), while Carol's list empties without a reload."""
    db = Database(database_url)
    try:
        await make_contributor(db, "carol")
    finally:
        await db.dispose()
    await api.stream("night")
    reader = await new_page()
    await reader.goto(f"{server.base}/live/night")
    await reader.wait_for_selector("main[data-connection='live']", timeout=WAIT_MS)

    carol = await new_page(**DESKTOP)
    await sign_in(carol, server.base, "carol")
    await carol.goto(f"{server.base}/editor/streams/night")
    await expect(carol.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    await expect(carol.locator("#compose-schedule")).to_have_count(0)
    text = carol.get_by_label("Text", exact=True)
    await text.fill("Crowds at the **north gate**, police estimate 10,000")
    await carol.get_by_role("button", name="Submit for approval").click()
    await expect(carol.locator("#compose-status")).to_have_text(
        "Sent to the desk for approval.", timeout=WAIT_MS)
    mine = carol.locator("#queue .queue-item")
    await expect(mine).to_contain_text("north gate", timeout=WAIT_MS)
    await expect(carol.locator("#posts > li")).to_have_count(0)

    alice = await new_page(**DESKTOP)
    await sign_in(alice, server.base, editor.username)
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    scheduled = await api.client.post("/api/streams/night/posts", json={
        "body": "**20:00 recap**: what we know so far", "publish_at": later})
    assert scheduled.status_code == 201, scheduled.text
    await alice.goto(f"{server.base}/editor/streams/night")
    await expect(alice.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    awaiting = alice.locator("#queue .queue-item[data-status='submitted']")
    await expect(awaiting).to_contain_text("north gate")
    await expect(alice.locator("#upcoming-heading")).to_contain_text("Upcoming")
    shots = _shots(tmp_path)
    await alice.locator("#queue").screenshot(path=str(shots / "desk-queue-desktop.png"))
    phone = await new_page(**PHONE)
    await sign_in(phone, server.base, editor.username)
    await phone.goto(f"{server.base}/editor/streams/night#queue")
    await phone.locator("#queue").screenshot(path=str(shots / "desk-queue-phone.png"))
    await carol.locator("#queue").screenshot(path=str(shots / "desk-mine-desktop.png"))
    assert await reader.locator("#feed > article").count() == 0
    meanwhile = await api.post("night", "Published while it waited")
    await expect(alice.locator(f"#post-{meanwhile['id']}")).to_be_visible(timeout=WAIT_MS)
    await expect(reader.locator("#feed > article")).to_have_count(1, timeout=WAIT_MS)

    await awaiting.get_by_role("button", name="Approve and publish").click()
    article = reader.locator("#feed > article").first
    await expect(article.locator(".post-body strong")).to_have_text("north gate",
                                                                   timeout=WAIT_MS)
    await expect(reader.locator("#feed > article")).to_have_count(2)
    # Newest first by the time it went out, on the desk as on the reader's page.
    await expect(alice.locator("#posts > li").first).to_contain_text("north gate")
    await expect(alice.locator("#queue .queue-item[data-status='submitted']")).to_have_count(0)
    await expect(carol.locator("#queue .queue-item")).to_have_count(0, timeout=WAIT_MS)
    await expect(carol.locator("#posts > li")).to_have_count(2, timeout=WAIT_MS)
    await expect(carol.locator("#posts > li").first).to_contain_text("north gate")


async def test_schedule_sends_the_editors_local_time_as_utc(
        server: LiveServer, api: Api, editor: EditorLogin,
        new_page: Callable[..., Any], tmp_path: Path) -> None:
    """An editor in Paris schedules a post for 21:30 their time: the API stores 21:30
    Paris time in UTC, the post waits in "Upcoming" with no reader seeing it, and the
    time fields show Paris time."""
    await api.stream("sched")
    zone = ZoneInfo("Europe/Paris")
    alice = await new_page(timezone_id="Europe/Paris", **DESKTOP)
    await sign_in(alice, server.base, editor.username)
    await alice.goto(f"{server.base}/editor/streams/sched")
    await expect(alice.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    when = (datetime.now(zone) + timedelta(days=1)).replace(hour=21, minute=30, second=0,
                                                            microsecond=0)
    await alice.get_by_label("Text", exact=True).fill("Tomorrow's recap")
    await alice.locator("#compose-schedule summary").click()
    await alice.get_by_label("Publish at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    await expect(alice.locator("#compose-schedule [data-zone-hint]")).to_contain_text(
        "your time, UTC+")
    await alice.locator(".compose").screenshot(path=str(_shots(tmp_path) / "desk-schedule.png"))
    # With a time set, the button says what it will do.
    await expect(alice.locator("#compose-submit")).to_have_text("Schedule")
    await alice.get_by_role("button", name="Schedule", exact=True).click()
    await expect(alice.locator("#compose-status")).to_contain_text("Scheduled for",
                                                                   timeout=WAIT_MS)
    await expect(alice.locator("#compose-submit")).to_have_text("Post")
    stored = (await api.client.get("/api/streams/sched/posts?status=scheduled")).json()
    assert [p["publish_at"] for p in stored["posts"]] == [
        when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00.000Z")]
    item = alice.locator("#queue .queue-item[data-status='scheduled']")
    await expect(item).to_contain_text("Tomorrow's recap", timeout=WAIT_MS)
    await expect(item.locator("input[type='datetime-local']")).to_have_value(
        when.strftime("%Y-%m-%dT%H:%M"))
    await expect(alice.locator("#posts > li")).to_have_count(0)
    assert (await api.client.get("/api/streams/sched")).json()["seq"] == 0


async def test_an_editors_open_desk_lists_submitted_posts_live_and_keeps_a_note_being_typed(
        server: LiveServer, api: Api, editor: EditorLogin, database_url: str,
        new_page: Callable[..., Any]) -> None:
    """Alice's desk is open before Carol submits: Carol's post appears in "Awaiting
    approval" without a reload. While Alice writes a note to send the first one back,
    Carol submits a second and a post is scheduled: the lists grow, and Alice's half-written
    note, its open "Send back…" and her caret stay as they were."""
    db = Database(database_url)
    try:
        carol = await make_contributor(db, "carol")
    finally:
        await db.dispose()
    await api.stream("night")
    alice = await new_page(**DESKTOP)
    await sign_in(alice, server.base, editor.username)
    await alice.goto(f"{server.base}/editor/streams/night")
    await expect(alice.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    awaiting = alice.locator("#queue .queue-item[data-status='submitted']")
    await expect(awaiting).to_have_count(0)

    async def submit(body: str) -> int:
        r = await api.client.post("/api/streams/night/posts", json={"body": body},
                                  headers={"Authorization": f"Bearer {carol.token}"})
        assert r.status_code == 201 and r.json()["status"] == "submitted", r.text
        post_id: int = r.json()["id"]
        return post_id

    first = await submit("Crowds at the north gate")
    await expect(awaiting).to_have_count(1, timeout=WAIT_MS)
    await expect(awaiting).to_contain_text("north gate")
    await alice.locator(f"#waiting-{first} .send-back summary").click()
    note = alice.locator(f"#note-{first}")
    await note.fill("Which gate? Add a source")
    await note.press("Home")  # the caret at the start: it must stay there
    await submit("Police close the bridge")
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    r = await api.client.post("/api/streams/night/posts", json={
        "body": "**20:00 recap**", "publish_at": later})
    assert r.status_code == 201, r.text
    await expect(awaiting).to_have_count(2, timeout=WAIT_MS)
    await expect(alice.locator("#queue .queue-item[data-status='scheduled']")).to_have_count(
        1, timeout=WAIT_MS)
    await expect(alice.locator(f"#note-{first}")).to_have_value("Which gate? Add a source")
    await expect(alice.locator(f"#note-{first}")).to_be_focused()
    assert await alice.locator(f"#note-{first}").evaluate("n => n.selectionStart") == 0
    await alice.keyboard.type("North or south? ")
    await alice.locator(f"#waiting-{first}").get_by_role("button", name="Send back").click()
    await expect(alice.locator("[role='status'], .flash").first).to_contain_text(
        "Sent back", timeout=WAIT_MS)
    stored = (await api.client.get("/api/streams/night/posts?status=returned")).json()
    assert [p["note"] for p in stored["posts"]] == ["North or south? Which gate? Add a source"]
