"""The editor desk in Chromium: signing in, streams, composing with preview and
Ctrl+Enter, the live list, edit/pin/delete in place, failed posts and retries, drafts,
accessibility and a phone-sized screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from bulletin.store.db import Database
from tests.browser.conftest import ConsoleErrors, axe_violations, sign_in
from tests.conftest import EditorLogin, make_editor
from tests.integration.conftest import Api, LiveServer

# A generous deadline for waits that only fail when something is broken.
WAIT_MS = 15_000


async def another_editor(database_url: str, server: LiveServer, username: str = "bob"
                         ) -> httpx.AsyncClient:
    """An API client for a second editor."""
    db = Database(database_url)
    try:
        login = await make_editor(db, username)
    finally:
        await db.dispose()
    return httpx.AsyncClient(base_url=server.base, headers=login.headers, timeout=10)


async def open_stream(new_page: Callable[..., Any], server: LiveServer, slug: str,
                      **context: Any) -> Any:
    """alice's desk page for a stream, following it live."""
    page = await new_page(**context)
    await sign_in(page, server.base, "alice")
    await page.goto(f"{server.base}/editor/streams/{slug}")
    await expect(page.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
    return page


async def post_bodies(page: Any) -> list[str]:
    """The text of each post in the desk's list, top to bottom."""
    texts: list[str] = await page.locator("#posts > li .post-body").all_inner_texts()
    return [" ".join(t.split()) for t in texts]


async def test_an_editor_runs_a_stream_from_the_desk(
        server: LiveServer, editor: EditorLogin, database_url: str,
        new_page: Callable[..., Any]) -> None:
    """Create, go live, preview, Ctrl+Enter, see others' posts live, edit, pin, delete."""
    page = await new_page()
    await sign_in(page, server.base, "alice")
    await page.get_by_label("Title", exact=True).fill("Budget day 2026")
    assert await page.get_by_label("Address").input_value() == "budget-day-2026"
    await page.get_by_role("button", name="Create stream").click()
    await page.wait_for_url(f"{server.base}/editor/streams/budget-day-2026")
    await expect(page.locator("#flash")).to_contain_text("created")
    await page.get_by_role("button", name="Go live").click()
    await expect(page.locator("#stream-status")).to_have_text("live")
    await expect(page.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)

    text = page.get_by_label("Text", exact=True)
    await text.fill("The chancellor is **on her feet**")
    await expect(page.locator("#preview strong")).to_have_text("on her feet", timeout=WAIT_MS)
    await text.press("Control+Enter")
    first = page.locator("#posts > li").first
    await expect(first.locator(".post-body strong")).to_have_text("on her feet")
    await expect(text).to_have_value("")
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    await expect(page.locator("#preview-box")).to_be_hidden()

    bob = await another_editor(database_url, server)
    try:
        r = await bob.post("/api/streams/budget-day-2026/posts", json={"body": "Fuel duty frozen"})
        assert r.status_code == 201
        bobs = page.locator(f"#post-{r.json()['id']}")
        await expect(bobs.locator(".post-body")).to_have_text("Fuel duty frozen", timeout=WAIT_MS)
        await expect(bobs.locator(".post-author")).to_have_text("Bob")
    finally:
        await bob.aclose()
    assert await post_bodies(page) == ["Fuel duty frozen", "The chancellor is on her feet"]

    mine = page.locator("#posts > li").nth(1)
    await mine.get_by_role("link", name="Edit").click()
    editor_box = mine.get_by_label("Edit post")
    await expect(editor_box).to_be_focused()
    await editor_box.fill("The chancellor is *on her feet* now")
    await mine.get_by_role("button", name="Save").click()
    await expect(mine.locator(".post-body em")).to_have_text("on her feet")
    await expect(mine.locator(".post-edited")).to_be_visible()

    await mine.get_by_role("button", name="Pin").click()
    await expect(mine.locator(".post-flag")).to_be_visible()
    await expect(mine.get_by_role("button", name="Unpin")).to_be_visible()
    await mine.get_by_role("button", name="Unpin").click()
    await expect(mine.locator(".post-flag")).to_be_hidden()

    top = page.locator("#posts > li").first
    await top.get_by_role("link", name="Delete").click()
    await expect(top.get_by_role("group")).to_contain_text("Delete this post?")
    await expect(top.get_by_role("button", name="Keep it")).to_be_focused()
    await top.get_by_role("button", name="Keep it").click()
    assert len(await post_bodies(page)) == 2
    await top.get_by_role("link", name="Delete").click()
    await top.get_by_role("button", name="Yes, delete").click()
    await expect(page.locator("#posts > li")).to_have_count(1)

    async with httpx.AsyncClient(base_url=server.base, headers=editor.headers) as check:
        posts = (await check.get("/api/streams/budget-day-2026/posts")).json()["posts"]
    assert [(p["body"], p["pinned"], p["revision"]) for p in posts] == [
        ("The chancellor is *on her feet* now", False, 2)]


async def test_a_lost_answer_is_checked_and_the_desk_says_it_was_posted(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """A post that reached the server but whose answer was lost: the desk asks again with
    the same key, gets the first answer back (replayed) and says "Posted", not "Not
    posted"; the post is in the list once."""
    await api.stream("match")
    page = await open_stream(new_page, server, "match")
    console.allowed.append("Failed to load resource")
    keys: list[str] = []
    lost: list[int] = []

    async def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if lost:
            await route.continue_()
            return
        response = await route.fetch()  # the server publishes it...
        lost.append(response.status)
        await route.abort("connectionreset")  # ...but the browser never hears back

    await page.route("**/api/streams/match/posts", lose_first_answer)
    text = page.get_by_label("Text", exact=True)
    await text.fill("Penalty to the home side")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_contain_text("Posted", timeout=WAIT_MS)
    await expect(page.locator("#compose-status")).to_contain_text("in the list once")
    await expect(page.locator("#compose-error")).to_be_hidden()
    await expect(text).to_have_value("")
    assert lost == [201]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    posts = (await api.client.get("/api/streams/match/posts")).json()["posts"]
    assert [p["body"] for p in posts] == ["Penalty to the home side"]
    await expect(page.locator("#posts > li")).to_have_count(1)


async def test_a_post_that_never_arrived_is_not_posted_and_keeps_the_text(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """When neither the post nor its checks reach the server, the desk says "Not posted"
    and keeps the text and key; the retry once the network is back posts once."""
    await api.stream("match")
    page = await open_stream(new_page, server, "match")
    console.allowed.append("Failed to load resource")
    keys: list[str] = []

    async def unreachable(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        await route.abort("internetdisconnected")

    await page.route("**/api/streams/match/posts", unreachable)
    text = page.get_by_label("Text", exact=True)
    await text.fill("Penalty to the home side")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_contain_text("checking whether")
    await expect(page.locator("#compose-error")).to_contain_text("Not posted", timeout=WAIT_MS)
    await expect(page.locator("#compose-error")).to_contain_text("Your text is kept")
    await expect(text).to_have_value("Penalty to the home side")
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0]
    assert (await api.client.get("/api/streams/match/posts")).json()["posts"] == []

    await page.unroute("**/api/streams/match/posts")
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#compose-status")).to_have_text("Posted.")
    await expect(text).to_have_value("")
    await expect(page.locator("#compose-error")).to_be_hidden()
    posts = (await api.client.get("/api/streams/match/posts")).json()["posts"]
    assert [p["body"] for p in posts] == ["Penalty to the home side"]
    await expect(page.locator("#posts > li")).to_have_count(1)


async def test_a_post_being_edited_shows_one_row_of_buttons(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """While a post is edited in place its Edit, Pin and Delete give way to the editor's
    Save and Cancel (the hidden row stays hidden), and come back after Cancel."""
    await api.stream("match")
    post = await api.post("match", "Kick-off")
    page = await open_stream(new_page, server, "match")
    item = page.locator(f"#post-{post['id']}")
    await item.get_by_role("link", name="Edit").click()
    await expect(item.get_by_label("Edit post")).to_be_focused()
    await expect(item.locator(".post-actions")).to_be_hidden()
    for name in ("Pin", "Delete"):
        await expect(item.get_by_role("button", name=name, exact=True)).to_have_count(0)
    await expect(item.get_by_role("link", name="Edit")).to_have_count(0)
    # The post's own buttons and the editor's, wherever they are: all on one line.
    boxes = await item.evaluate("""li => [...li.querySelectorAll(
            ".post-actions button, .post-actions a.button, .compose-row button")]
        .map(b => b.getBoundingClientRect()).filter(box => box.width > 0)
        .map(box => [box.top, box.bottom])""")
    assert len(boxes) == 2  # Save and Cancel
    assert max(top for top, _ in boxes) < min(bottom for _, bottom in boxes)
    await item.get_by_role("button", name="Cancel").click()
    await expect(item.locator(".post-actions")).to_be_visible()
    await expect(item.get_by_role("link", name="Edit")).to_be_focused()


async def test_a_server_error_is_shown_and_the_retry_uses_the_same_key(
        server: LiveServer, api: Api, new_page: Callable[..., Any],
        console: ConsoleErrors) -> None:
    """A 503 shows a clear error with the text kept; the retry posts with the same key."""
    await api.stream("match")
    page = await open_stream(new_page, server, "match")
    console.allowed.append("503")
    keys: list[str] = []

    async def unavailable_once(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            await route.fulfill(status=503, content_type="application/json", headers={
                "Retry-After": "2"}, body='{"error": {"code": "database_unavailable", '
                '"message": "the database is unavailable", "details": null}}')
        else:
            await route.continue_()

    await page.route("**/api/streams/match/posts", unavailable_once)
    text = page.get_by_label("Text", exact=True)
    await text.fill("Half time: 0-0")
    await text.press("Control+Enter")
    await expect(page.locator("#compose-error")).to_contain_text("HTTP 503")
    await expect(text).to_have_value("Half time: 0-0")
    await text.press("Control+Enter")
    await expect(text).to_have_value("")
    assert keys[0] == keys[1]
    posts = (await api.client.get("/api/streams/match/posts")).json()["posts"]
    assert [p["body"] for p in posts] == ["Half time: 0-0"]


async def test_the_draft_survives_a_reload(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """Text typed but not posted is back after a reload, with its Key event choice."""
    await api.stream("match")
    page = await open_stream(new_page, server, "match")
    await page.get_by_label("Text", exact=True).fill("Red card, 61 minutes")
    await page.get_by_label("Key event").check()
    key = await page.locator("input[name=idempotency_key]").input_value()
    await page.reload()
    await expect(page.get_by_label("Text", exact=True)).to_have_value("Red card, 61 minutes")
    await expect(page.get_by_label("Key event")).to_be_checked()
    await expect(page.locator("#compose-status")).to_contain_text("draft was restored")
    assert await page.locator("input[name=idempotency_key]").input_value() == key
    posts = (await api.client.get("/api/streams/match/posts")).json()["posts"]
    assert posts == []


async def test_desk_pages_have_no_serious_accessibility_problems(
        server: LiveServer, api: Api, database_url: str,
        new_page: Callable[..., Any]) -> None:
    """axe finds nothing serious on sign-in, streams, a stream and the admin pages."""
    db = Database(database_url)
    try:
        await make_editor(db, "root", role="admin")
    finally:
        await db.dispose()
    await api.stream("match")
    await api.post("match", "Kick-off **now**")
    page = await new_page(bypass_csp=True)
    await page.goto(f"{server.base}/editor/login")
    assert await axe_violations(page) == []
    await sign_in(page, server.base, "root")
    for path in ("/editor", "/editor/streams/match", "/editor/admin/editors",
                 "/editor/admin/tokens"):
        await page.goto(f"{server.base}{path}")
        if path.endswith("match"):
            await expect(page.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)
        assert await axe_violations(page) == [], path


async def test_the_compose_page_fits_a_phone(
        server: LiveServer, api: Api, new_page: Callable[..., Any]) -> None:
    """At 375 px wide the stream page has no sideways scroll and posting works."""
    await api.stream("match")
    await api.post("match", "A long link: https://example.com/" + "a" * 120)
    page = await open_stream(new_page, server, "match", viewport={"width": 375, "height": 740})
    await page.get_by_label("Text", exact=True).fill("Goal! " + "x" * 200)
    await page.get_by_role("button", name="Post", exact=True).click()
    await expect(page.locator("#posts > li")).to_have_count(2)
    await expect(page.get_by_label("Text", exact=True)).to_have_value("")
    for path in ("/editor/streams/match", "/editor"):
        await page.goto(f"{server.base}{path}")
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, path
    await page.goto(f"{server.base}/editor/streams/match")
    box = await page.get_by_role("button", name="Post", exact=True).bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375


async def test_two_editors_editing_one_post_lose_no_text(
        server: LiveServer, api: Api, database_url: str,
        new_page: Callable[..., Any], console: ConsoleErrors) -> None:
    """Alice and Bob edit the same post on two desks. Alice saves first; Bob's save is
    refused (412) and his desk shows her text beside his, his still in the box. He keeps
    his and saves over hers (her text stays in the revisions); in a second round he takes
    hers, with his own still on the screen."""
    await api.stream("vote")
    post = await api.post("vote", "Turnout 52%")
    url = f"/api/posts/{post['id']}"
    console.allowed.append("412 (Precondition Failed)")
    db = Database(database_url)
    try:
        await make_editor(db, "bob")
    finally:
        await db.dispose()
    alice = await open_stream(new_page, server, "vote")
    bob = await new_page(bypass_csp=True)
    await sign_in(bob, server.base, "bob")
    await bob.goto(f"{server.base}/editor/streams/vote")
    await expect(bob.locator("#live-status")).to_contain_text("Live", timeout=WAIT_MS)

    hers, his = alice.locator(f"#post-{post['id']}"), bob.locator(f"#post-{post['id']}")
    await hers.get_by_role("link", name="Edit").click()
    await his.get_by_role("link", name="Edit").click()
    await hers.get_by_label("Edit post").fill("Turnout 50.4% (official)")
    await his.get_by_label("Edit post").fill("Turnout 51% says the council")
    await hers.get_by_role("button", name="Save").click()
    await expect(hers.locator(":scope > .post-body")).to_have_text("Turnout 50.4% (official)")

    await his.get_by_role("button", name="Save", exact=True).click()
    theirs = his.get_by_label("Their version")
    await expect(theirs).to_have_value("Turnout 50.4% (official)", timeout=WAIT_MS)
    await expect(his.get_by_label("Your version")).to_have_value("Turnout 51% says the council")
    await expect(his.locator(".edit-status")).to_contain_text("Not saved")
    assert (await api.client.get(url)).json()["body"] == "Turnout 50.4% (official)"
    mine_box = await his.get_by_label("Your version").bounding_box()
    theirs_box = await theirs.bounding_box()
    assert mine_box and theirs_box and theirs_box["x"] > mine_box["x"] + mine_box["width"] - 1
    assert await axe_violations(bob) == []

    await his.get_by_role("button", name="Keep mine and save over theirs").click()
    await expect(his.locator(":scope > .post-body")).to_have_text("Turnout 51% says the council")
    await expect(hers.locator(":scope > .post-body")).to_have_text("Turnout 51% says the council",
                                                          timeout=WAIT_MS)
    saved = (await api.client.get(url)).json()
    assert (saved["body"], saved["revision"]) == ("Turnout 51% says the council", 3)
    history = (await api.client.get(f"{url}/revisions")).json()["revisions"]
    assert [r["body"] for r in history] == ["Turnout 52%", "Turnout 50.4% (official)"]

    # Round two: Bob takes Alice's version; his own stays on the screen until he closes.
    await his.get_by_role("link", name="Edit").click()
    await his.get_by_label("Edit post").fill("Turnout: 51.2%")
    await api.client.patch(url, json={"body": "Turnout 51.1% (final)"})
    await his.get_by_role("button", name="Save", exact=True).click()
    await expect(his.get_by_label("Their version")).to_have_value("Turnout 51.1% (final)",
                                                                  timeout=WAIT_MS)
    await his.get_by_role("button", name="Take theirs").click()
    await expect(his.get_by_label("Your version")).to_have_value("Turnout 51.1% (final)")
    await expect(his.get_by_label("Your earlier version (not saved)")).to_have_value(
        "Turnout: 51.2%")
    await his.get_by_role("button", name="Save", exact=True).click()
    await expect(his.get_by_label("Your version")).to_have_count(0)
    final = (await api.client.get(url)).json()
    assert (final["body"], final["revision"]) == ("Turnout 51.1% (final)", 4)

    # A deletion confirmed after someone else's edit shows that edit and asks again.
    await his.get_by_role("link", name="Delete").click()
    await api.client.patch(url, json={"body": "Turnout 51.1% (final, certified)"})
    await his.get_by_role("button", name="Yes, delete").click()
    await expect(his.get_by_role("group")).to_contain_text("changed this post meanwhile")
    await expect(his.locator(":scope > .post-body")).to_have_text(
        "Turnout 51.1% (final, certified)")
    assert (await api.client.get(url)).status_code == 200
    await his.get_by_role("button", name="Yes, delete").click()
    await expect(his).to_have_count(0)
    assert (await api.client.get(url)).status_code == 404


async def test_a_conflict_lists_their_headline_tags_and_bylines_and_take_theirs_takes_them(
        server: LiveServer, api: Api, database_url: str, tmp_path: Path,
        new_page: Callable[..., Any], console: ConsoleErrors) -> None:
    """While Alice edits a post's text, another editor gives it a headline, tags and a
    byline. Her save is refused; beside the two texts the desk lists what else differs,
    theirs and hers; "Take theirs" fills the fields with theirs too, so saving keeps them."""
    await api.stream("vote")
    zoe = (await api.client.post("/api/people", json={"name": "Zoe Mendes",
                                                      "description": "Reporter"})).json()
    post = await api.post("vote", "Turnout 52%")
    url = f"/api/posts/{post['id']}"
    console.allowed.append("412 (Precondition Failed)")
    alice = await open_stream(new_page, server, "vote", bypass_csp=True)
    mine = alice.locator(f"#post-{post['id']}")
    await mine.get_by_role("link", name="Edit").click()
    await mine.get_by_label("Edit post").fill("Turnout 51%")
    await mine.get_by_label("Tags").fill("turnout")
    r = await api.client.patch(url, json={"headline": "Official count", "tags": ["results"],
                                          "contributors": [zoe["id"]]})
    assert r.status_code == 200, r.text
    await mine.get_by_role("button", name="Save", exact=True).click()
    await expect(mine.get_by_label("Their version")).to_have_value("Turnout 52%",
                                                                   timeout=WAIT_MS)
    table = mine.locator(".edit-differences")
    rows = [" | ".join(cells) for cells in await table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))")]
    assert rows == ["Headline | Official count | (none)", "Tags | results | turnout",
                    "By | Zoe Mendes | (none)"]
    await expect(table.locator("thead")).to_contain_text("Yours")
    await mine.screenshot(path=str(tmp_path / "conflict.png"))
    assert await axe_violations(alice) == []
    await mine.get_by_role("button", name="Take theirs").click()
    await expect(mine.get_by_label("Headline")).to_have_value("Official count")
    await expect(mine.get_by_label("Tags")).to_have_value("results")
    await expect(mine.get_by_role("checkbox", name="Zoe Mendes")).to_be_checked()
    await expect(table.locator("thead")).to_contain_text("Your earlier (not saved)")
    await mine.get_by_role("button", name="Save", exact=True).click()
    await expect(mine.get_by_label("Your version")).to_have_count(0, timeout=WAIT_MS)
    saved = (await api.client.get(url)).json()
    assert (saved["body"], saved["headline"], saved["tags"]) == (
        "Turnout 52%", "Official count", ["results"])
    assert [p["name"] for p in saved["contributors"]] == ["Zoe Mendes"]


async def test_an_admin_makes_a_scoped_token_on_a_phone(
        server: LiveServer, api: Api, database_url: str,
        new_page: Callable[..., Any]) -> None:
    """At 390 px the tokens page has no sideways scroll; a token made there with a scope,
    a stream and a lifetime is listed with them, each line labelled; axe finds nothing
    serious on the stacked list."""
    db = Database(database_url)
    try:
        await make_editor(db, "root", role="admin")
    finally:
        await db.dispose()
    await api.stream("match")
    page = await new_page(bypass_csp=True, viewport={"width": 390, "height": 844},
                          device_scale_factor=3)
    await sign_in(page, server.base, "root")
    await page.goto(f"{server.base}/editor/admin/tokens")
    await page.get_by_label("Name").fill("score feed")
    await page.get_by_label("Scope").select_option("read")
    await page.get_by_label("Streams").fill("match")
    await page.get_by_label("Expires after").fill("30d")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.get_by_text("Scope: read. Streams: match. Expires: ")).to_be_visible()
    await page.get_by_role("link", name="Done").click()
    row = page.locator("table.tokens tbody tr").first
    await expect(row.locator("td[data-label=Name]")).to_have_text("score feed")
    await expect(row.locator("td[data-label=Scope]")).to_have_text("read")
    await expect(row.locator("td[data-label=Streams]")).to_have_text("match")
    await expect(row.locator("td[data-label=Expires] time")).to_have_count(1)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    scope_box = await row.locator("td[data-label=Scope]").bounding_box()
    name_box = await row.locator("td[data-label=Name]").bounding_box()
    assert scope_box is not None and name_box is not None
    assert scope_box["y"] > name_box["y"]  # one line each, not columns
    assert await axe_violations(page) == []
