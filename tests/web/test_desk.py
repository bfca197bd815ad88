"""The editor desk through the ASGI app, on SQLite and PostgreSQL: sign-in, sessions,
CSRF, posting without JavaScript, the session cookie on the API, admin pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from bulletin.core import content
from bulletin.live.driver import HubDriver
from bulletin.store import auth, eventlog
from bulletin.store.db import Database
from bulletin.store.models import ApiToken, utcnow
from tests.conftest import EditorLogin, make_editor
from tests.helpers import new_stream, snapshot

PASSWORD = "correct horse battery"


def field(html: str, name: str) -> str:
    """The value of a form field (the first with this name) in a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no field {name!r} in the page"
    return match.group(1)


def meta_csrf(html: str) -> str:
    """The CSRF token a page gives its scripts."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, "no csrf-token meta in the page"
    return match.group(1)


def desk_client(app: Starlette, base: str = "http://testserver", *,
                address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A browser-like client of the app (it keeps cookies), calling from ``address``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)),
                             base_url=base)


async def try_sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD,
                      next_path: str = "/editor") -> httpx.Response:
    """Fetch the sign-in form and send it."""
    page = await client.get("/editor/login")
    return await client.post("/editor/login", data={
        "csrf_token": field(page.text, "csrf_token"), "username": username,
        "password": password, "next": next_path})


async def sign_in(client: httpx.AsyncClient, username: str = "alice") -> str:
    """Sign in and return the session's CSRF token."""
    response = await try_sign_in(client, username)
    assert response.status_code == 303, response.text
    page = await client.get("/editor")
    assert page.status_code == 200
    return meta_csrf(page.text)


@pytest.fixture
async def desk(app: Starlette, editor: EditorLogin) -> Any:
    """alice's browser, signed in, with its CSRF token as ``desk.csrf``."""
    async with desk_client(app) as client:
        client.csrf = await sign_in(client)  # type: ignore[attr-defined]
        yield client


async def session_count(db: Database) -> int:
    """Rows in the sessions table."""
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM editor_sessions")))
                   .scalar_one())


# --- signing in --------------------------------------------------------------------------


async def test_the_desk_is_invisible_without_a_session(client: httpx.AsyncClient) -> None:
    """Every desk page redirects to the sign-in page with a local ``next``."""
    for path in ("/editor", "/editor/streams/vote", "/editor/admin/editors",
                 "/editor/no-such-page", "/editor/posts/1/edit?x=1"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/editor/login?next=/editor"), path
    form = await client.get("/editor/login")
    assert form.status_code == 200
    assert 'name="password"' in form.text
    assert "Content-Security-Policy" in form.headers


async def test_signing_in_sets_a_hashed_session_with_safe_cookie_flags(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """The session cookie is HttpOnly, SameSite=Lax, Path=/; only its hash is stored."""
    async with desk_client(app) as client:
        response = await try_sign_in(client, "alice")
    assert response.status_code == 303
    assert response.headers["location"] == "/editor"
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("bulletin_session="))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "path=/" in flags and "samesite=lax" in flags
    assert "secure" not in flags
    token = cookie.split(";")[0].split("=", 1)[1]
    async with db.engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT token_hash FROM editor_sessions"))).all()
    assert len(stored) == 1 and token not in stored[0][0]


async def test_the_session_cookie_is_secure_over_https(
    app: Starlette, editor: EditorLogin
) -> None:
    """Over https the session cookie also carries Secure."""
    async with desk_client(app, "https://testserver") as client:
        response = await try_sign_in(client, "alice")
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("bulletin_session="))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_wrong_username_and_wrong_password_get_the_same_answer(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """A bad password and an unknown name are both a 401 with the same message, no cookie."""
    async with desk_client(app) as client:
        wrong_password = await try_sign_in(client, "alice", "not the password")
        wrong_name = await try_sign_in(client, "nobody", PASSWORD)
    for response in (wrong_password, wrong_name):
        assert response.status_code == 401
        assert "do not match an active account" in response.text
        assert "bulletin_session=" not in response.headers.get("set-cookie", "")
    assert await session_count(db) == 0


async def test_failed_sign_ins_are_rate_limited_per_address(
    app: Starlette, editor: EditorLogin
) -> None:
    """After the budget of attempts, sign-in is a 429 with Retry-After, even when right."""
    async with desk_client(app) as client:
        # Ten accounts, so that no account's own budget runs out first.
        for i in range(10):
            assert (await try_sign_in(client, f"nobody{i}", "wrong password!")).status_code == 401
        limited = await try_sign_in(client, "alice", "wrong password!")
        right = await try_sign_in(client, "alice", PASSWORD)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in limited.text
    assert right.status_code == 429


# --- the per-account limit and the device cookie -------------------------------------------


def device_cookie(response: httpx.Response) -> str | None:
    """The Set-Cookie header for the device cookie in a response, if any."""
    return next((c for c in response.headers.get_list("set-cookie")
                 if c.startswith("bulletin_device=")), None)


async def sign_out(client: httpx.AsyncClient) -> None:
    """Sign a browser out through the desk's button (its device cookie stays)."""
    csrf = meta_csrf((await client.get("/editor")).text)
    assert (await client.post("/editor/logout", data={"csrf_token": csrf})).status_code == 303


async def lock_out(app: Starlette, username: str = "alice", *, attempts: int = 20,
                   first: int = 0) -> list[httpx.Response]:
    """Guess at an account's password from ``attempts`` addresses, one guess each."""
    answers = []
    for i in range(first, first + attempts):
        async with desk_client(app, address=f"10.0.{i}.1") as guesser:
            answers.append(await try_sign_in(guesser, username, f"guess number {i}"))
    return answers


async def test_one_account_is_limited_across_many_addresses(
    app: Starlette, editor: EditorLogin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 wrong passwords for one account from 60 addresses: five are checked, the rest are
    a 429 "temporarily locked" without checking, and so is the right password after."""
    checked: list[str] = []
    verify = auth.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    answers = []
    for i in range(60):
        async with desk_client(app, address=f"10.0.{i}.1") as guesser:
            # However the name is written, it is the same account.
            name = "alice" if i % 2 else " ALICE "
            answers.append(await try_sign_in(guesser, name, f"guess number {i}"))
    assert [r.status_code for r in answers] == [401] * 5 + [429] * 55
    assert len(checked) == 5
    for locked in answers[5:]:
        assert "This account is temporarily locked" in locked.text
        assert 1 <= int(locked.headers["retry-after"]) <= 12
        assert device_cookie(locked) is None
    async with desk_client(app, address="192.0.2.7") as newcomer:
        right = await try_sign_in(newcomer, "alice")
    assert right.status_code == 429 and "temporarily locked" in right.text
    assert "bulletin_session=" not in right.headers.get("set-cookie", "")
    assert len(checked) == 5


async def test_a_browser_that_signed_in_before_signs_in_during_a_lockout(
    app: Starlette, editor: EditorLogin
) -> None:
    """While guessers from many addresses keep the account locked, the editor's own
    browser (it carries the device cookie) still signs in."""
    async with desk_client(app, address="192.0.2.10") as own:
        await sign_in(own)
        await sign_out(own)
        assert "bulletin_device" in own.cookies
        answers = await lock_out(app)
        assert answers[-1].status_code == 429
        assert "temporarily locked" in answers[-1].text
        again = await try_sign_in(own, "alice")
        assert again.status_code == 303
        assert (await own.get("/editor")).status_code == 200
    assert (await lock_out(app, attempts=1, first=50))[0].status_code == 429


async def test_a_device_has_a_budget_of_its_own_for_its_own_account_only(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """A device's wrong passwords spend its own budget, not the account's; a device cookie
    from another account, or a forged one, spends the account's."""
    await make_editor(db, "mallory")
    async with desk_client(app, address="192.0.2.10") as own:
        await sign_in(own)
        await sign_out(own)
        for _ in range(5):
            assert (await try_sign_in(own, "alice", "a typo of mine")).status_code == 401
        spent = await try_sign_in(own, "alice")
        assert spent.status_code == 429 and "temporarily locked" in spent.text
    async with desk_client(app, address="192.0.2.11") as other_browser:
        assert (await try_sign_in(other_browser, "alice")).status_code == 303
    async with desk_client(app, address="192.0.2.12") as attacker:
        await sign_in(attacker, "mallory")
        await sign_out(attacker)
        mallorys = attacker.cookies["bulletin_device"]
        for i in range(5):
            assert (await try_sign_in(attacker, "alice", f"guess {i}")).status_code == 401
        assert (await try_sign_in(attacker, "alice", "guess 5")).status_code == 429
    async with desk_client(app, address="192.0.2.14") as newcomer:
        # The account's own budget is what mallory's guesses spent.
        assert (await try_sign_in(newcomer, "alice")).status_code == 429
    async with desk_client(app, address="192.0.2.13") as forger:
        editor_id, nonce = mallorys.split(".")[1:3]
        forger.cookies.set("bulletin_device", f"device.{editor.editor_id}.{nonce}.{'0' * 64}",
                           path="/editor")
        assert editor_id != str(editor.editor_id)
        assert (await try_sign_in(forger, "alice")).status_code == 429


async def test_the_device_cookie_is_signed_long_lived_and_kept(
    app: Starlette, editor: EditorLogin
) -> None:
    """Signing in sets bulletin_device: HttpOnly, SameSite=Lax, Path=/editor, a year long,
    Secure over https, signed and naming the editor; it is kept across sign-ins and
    sign-outs."""
    async with desk_client(app) as client:
        response = await try_sign_in(client, "alice")
        cookie = device_cookie(response)
        assert cookie is not None
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags and "path=/editor" in flags and "samesite=lax" in flags
        assert "secure" not in flags
        max_age = next(int(f.split("=")[1]) for f in flags if f.startswith("max-age="))
        assert max_age >= 300 * 24 * 3600
        kind, editor_id, nonce, mac = client.cookies["bulletin_device"].split(".")
        assert (kind, editor_id) == ("device", str(editor.editor_id))
        assert len(nonce) >= 22 and len(mac) == 64
        value = client.cookies["bulletin_device"]
        await sign_out(client)
        assert client.cookies["bulletin_device"] == value
        assert (await try_sign_in(client, "alice")).status_code == 303
        assert client.cookies["bulletin_device"] == value
    async with desk_client(app, "https://testserver") as secure:
        cookie = device_cookie(await try_sign_in(secure, "alice"))
    assert cookie is not None and "secure" in [p.strip().lower() for p in cookie.split(";")]


async def test_successful_sign_ins_spend_nothing_of_the_account_budget(
    app: Starlette, editor: EditorLogin
) -> None:
    """Only failures count: after many sign-ins from new browsers, five wrong passwords
    are still checked before the account locks."""
    for i in range(8):
        async with desk_client(app, address=f"192.0.2.{i + 20}") as browser:
            assert (await try_sign_in(browser, "alice")).status_code == 303
    answers = await lock_out(app, attempts=6)
    assert [r.status_code for r in answers] == [401] * 5 + [429]


async def test_the_sign_in_form_needs_its_csrf_token(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """A sign-in without the form's token, or with another browser's, is refused (403)."""
    async with desk_client(app) as client, desk_client(app) as other:
        token = field((await other.get("/editor/login")).text, "csrf_token")
        missing = await client.post("/editor/login", data={
            "username": "alice", "password": PASSWORD})
        await client.get("/editor/login")
        foreign = await client.post("/editor/login", data={
            "csrf_token": token, "username": "alice", "password": PASSWORD})
    assert missing.status_code == 403 and foreign.status_code == 403
    assert "form had expired" in foreign.text
    assert await session_count(db) == 0


@pytest.mark.parametrize("target, expected", [
    ("/editor/streams/vote?before=3", "/editor/streams/vote?before=3"),
    ("https://evil.example/", "/editor"),
    ("//evil.example/x", "/editor"),
    ("/\\evil.example", "/editor"),
    ("javascript:alert(1)", "/editor"),
])
async def test_next_is_followed_only_to_local_paths(
    app: Starlette, editor: EditorLogin, target: str, expected: str
) -> None:
    """After signing in, ``next`` is followed when it is a local path, else /editor."""
    async with desk_client(app) as client:
        response = await try_sign_in(client, "alice", next_path=target)
    assert response.status_code == 303
    assert response.headers["location"] == expected


async def test_signing_out_ends_the_session(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """Sign-out deletes the session row; the old cookie no longer opens the desk."""
    async with desk_client(app) as client:
        csrf = await sign_in(client)
        cookie = client.cookies["bulletin_session"]
        refused = await client.post("/editor/logout", data={"csrf_token": "wrong"})
        assert refused.status_code == 403 and await session_count(db) == 1
        out = await client.post("/editor/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/editor/login"
        assert "bulletin_session" not in client.cookies
    assert await session_count(db) == 0
    async with desk_client(app) as stale:
        stale.cookies.set("bulletin_session", cookie)
        assert (await stale.get("/editor")).status_code == 303


async def test_idle_and_expired_sessions_stop_working(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """A session unused for the idle limit, or past its absolute end, is signed out."""
    async with desk_client(app) as client:
        await sign_in(client)
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE editor_sessions SET last_seen_at = :t"),
                               {"t": (utcnow() - timedelta(hours=13)).replace(tzinfo=None)})
        assert (await client.get("/editor")).status_code == 303
    async with desk_client(app) as client:
        await sign_in(client)
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE editor_sessions SET expires_at = :t"),
                               {"t": (utcnow() - timedelta(minutes=1)).replace(tzinfo=None)})
        assert (await client.get("/editor")).status_code == 303


# --- CSRF and the session cookie on the API ------------------------------------------------


async def test_a_form_without_the_csrf_token_changes_nothing(
    desk: Any, db: Database
) -> None:
    """A desk form with a missing or wrong CSRF token is a 403 page and writes nothing."""
    before = await snapshot(db)
    for token in ("", "0" * 64):
        response = await desk.post("/editor/streams", data={
            "csrf_token": token, "slug": "vote", "title": "Vote", "status": "live"})
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert "This form has expired" in response.text
    assert await snapshot(db) == before


async def test_the_api_accepts_the_session_cookie_with_the_csrf_header(
    desk: Any, db: Database
) -> None:
    """With the cookie, reads need nothing more; writes need X-CSRF-Token, else 403."""
    await _form_stream(desk, "vote", status="draft")
    assert (await desk.get("/api/streams/vote")).status_code == 200  # a draft: editors only
    assert (await desk.get("/api/me")).json()["username"] == "alice"
    before = await snapshot(db)
    for headers in ({}, {"X-CSRF-Token": "nope"}):
        refused = await desk.post("/api/streams/vote/posts", json={"body": "Hi"},
                                  headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
    assert await snapshot(db) == before
    headers = {"X-CSRF-Token": desk.csrf, "Idempotency-Key": "draft-1"}
    first = await desk.post("/api/streams/vote/posts", json={"body": "Hi"}, headers=headers)
    again = await desk.post("/api/streams/vote/posts", json={"body": "Hi"}, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    posts = (await desk.get("/api/streams/vote/posts")).json()["posts"]
    assert [p["body"] for p in posts] == ["Hi"]


async def test_a_stale_session_cookie_reads_as_anonymous(
    client: httpx.AsyncClient, editor_client: httpx.AsyncClient
) -> None:
    """An unknown session cookie is no credential: drafts stay hidden, writes are 401."""
    await new_stream(editor_client, "plan", status="draft")
    client.cookies.set("bulletin_session", "not-a-session")
    assert (await client.get("/api/streams/plan")).status_code == 404
    refused = await client.post("/api/streams/plan/posts", json={"body": "x"},
                                headers={"X-CSRF-Token": "x"})
    assert refused.status_code == 401


# --- streams and posts without JavaScript ----------------------------------------------------


async def _form_stream(desk: Any, slug: str, status: str = "live") -> None:
    page = await desk.get("/editor")
    response = await desk.post("/editor/streams", data={
        "csrf_token": desk.csrf, "idempotency_key": field(page.text, "idempotency_key"),
        "slug": slug, "title": f"Story {slug}", "description": "", "status": status})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/editor/streams/{slug}"


async def test_streams_are_created_and_go_live_and_end_through_forms(desk: Any) -> None:
    """Create a draft, edit its details, go live, end: each a POST and a 303 back."""
    await _form_stream(desk, "vote", status="draft")
    page = await desk.get("/editor/streams/vote")
    assert "Go live" in page.text and "/embed/vote" in page.text and "/live/vote" in page.text
    assert ('title="Story vote: live updates" width="100%" height="640" loading="lazy" '
            'style="border:0"') in page.text.replace("&#34;", '"').replace("&quot;", '"')
    details = await desk.post("/editor/streams/vote/details", data={
        "csrf_token": desk.csrf, "title": "Vote night", "description": "Results"})
    assert details.status_code == 303
    live = await desk.post("/editor/streams/vote/status",
                           data={"csrf_token": desk.csrf, "status": "live"})
    assert live.status_code == 303
    shown = await desk.get("/editor/streams/vote")
    assert "The stream is live." in shown.text
    assert 'href="/editor/streams/vote/end"' in shown.text  # a question first, not a button
    stream = (await desk.get("/api/streams/vote")).json()
    assert (stream["title"], stream["status"]) == ("Vote night", "live")
    # A form that does not come from the question ends nothing: it leads to the question.
    unasked = await desk.post("/editor/streams/vote/status",
                              data={"csrf_token": desk.csrf, "status": "ended"})
    assert (unasked.status_code, unasked.headers["location"]) == (
        303, "/editor/streams/vote/end")
    assert (await desk.get("/api/streams/vote")).json()["status"] == "live"
    question = await desk.get("/editor/streams/vote/end")
    assert question.status_code == 200 and "End “Vote night”?" in question.text
    assert "Every reader sees the story as ended" in question.text
    assert 'name="confirm" value="1"' in question.text and "Keep it live" in question.text
    ended = await desk.post("/editor/streams/vote/status", data={
        "csrf_token": desk.csrf, "status": "ended", "confirm": "1"})
    assert ended.status_code == 303
    assert (await desk.get("/api/streams/vote")).json()["status"] == "ended"
    after = await desk.get("/editor/streams/vote/end")
    assert "there is nothing to end" in after.text and 'name="confirm"' not in after.text
    again = await desk.post("/editor/streams", data={
        "csrf_token": desk.csrf, "slug": "vote", "title": "Again", "status": "draft"})
    assert again.status_code == 409 and "already exists" in again.text


async def test_posting_without_javascript_redirects_and_replays_once(
    desk: Any, db: Database
) -> None:
    """The compose form posts and redirects; resending the same form posts nothing new."""
    await _form_stream(desk, "vote")
    page = await desk.get("/editor/streams/vote")
    form = {"csrf_token": desk.csrf, "idempotency_key": field(page.text, "idempotency_key"),
            "body": "Polls **close**\r\nat ten", "pinned": "1"}
    first = await desk.post("/editor/streams/vote/posts", data=form)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/editor/streams/vote#post-")
    assert "Posted." in (await desk.get("/editor/streams/vote")).text
    again = await desk.post("/editor/streams/vote/posts", data=form)
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert "already published" in (await desk.get("/editor/streams/vote")).text
    posts = (await desk.get("/api/streams/vote/posts")).json()["posts"]
    assert len(posts) == 1
    assert posts[0]["body"] == "Polls **close**\nat ten" and posts[0]["pinned"] is True


async def test_a_refused_post_keeps_the_text_and_changes_nothing(
    desk: Any, db: Database
) -> None:
    """Empty, too long or to an ended stream: an error on the page, the text kept, no write."""
    await _form_stream(desk, "vote")
    key = field((await desk.get("/editor/streams/vote")).text, "idempotency_key")
    before = await snapshot(db)
    empty = await desk.post("/editor/streams/vote/posts", data={
        "csrf_token": desk.csrf, "idempotency_key": key, "body": "   "})
    assert empty.status_code == 422 and "Write something to post." in empty.text
    long = await desk.post("/editor/streams/vote/posts", data={
        "csrf_token": desk.csrf, "idempotency_key": key, "body": "x" * 20_001})
    assert long.status_code == 422 and "at most 20000 characters" in long.text
    assert "x" * 20_001 in long.text
    assert field(long.text, "idempotency_key") == key
    assert await snapshot(db) == before
    await desk.post("/editor/streams/vote/status", data={"csrf_token": desk.csrf,
                                                         "status": "ended", "confirm": "1"})
    before = await snapshot(db)
    ended = await desk.post("/editor/streams/vote/posts", data={
        "csrf_token": desk.csrf, "idempotency_key": key, "body": "Late news"})
    assert ended.status_code == 409 and "Late news" in ended.text
    assert await snapshot(db) == before


async def test_posts_are_edited_pinned_and_deleted_through_forms(desk: Any) -> None:
    """The no-JavaScript edit page, pin button and delete confirmation all work."""
    await _form_stream(desk, "vote")
    post = (await desk.post("/api/streams/vote/posts", json={"body": "Frist"},
                            headers={"X-CSRF-Token": desk.csrf})).json()
    edit_page = await desk.get(f"/editor/posts/{post['id']}/edit")
    assert edit_page.status_code == 200 and "Frist" in edit_page.text
    edited = await desk.post(f"/editor/posts/{post['id']}/edit",
                             data={"csrf_token": desk.csrf, "body": "First"})
    assert edited.status_code == 303
    pinned = await desk.post(f"/editor/posts/{post['id']}/pin",
                             data={"csrf_token": desk.csrf, "pinned": "1"})
    assert pinned.status_code == 303
    now = (await desk.get(f"/api/posts/{post['id']}")).json()
    assert (now["body"], now["pinned"], now["revision"]) == ("First", True, 2)
    confirm = await desk.get(f"/editor/posts/{post['id']}/delete")
    assert "Delete this post?" in confirm.text
    deleted = await desk.post(f"/editor/posts/{post['id']}/delete",
                              data={"csrf_token": desk.csrf})
    assert deleted.status_code == 303
    assert (await desk.get(f"/api/posts/{post['id']}")).status_code == 404
    gone = await desk.get(f"/editor/posts/{post['id']}/edit")
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("text/html")


async def test_the_edit_and_delete_forms_refuse_a_stale_revision(
        desk: Any, db: Database) -> None:
    """An edit form made before someone else saved comes back with both texts (412) and
    saves nothing; sent again, it saves over theirs. A delete asked about an older
    revision shows the post as it is now and asks again."""
    await _form_stream(desk, "vote")
    post = (await desk.post("/api/streams/vote/posts", json={"body": "Turnout 52%"},
                            headers={"X-CSRF-Token": desk.csrf})).json()
    url = f"/editor/posts/{post['id']}/edit"
    revision = field((await desk.get(url)).text, "revision")
    assert revision == "1"
    await desk.patch(f"/api/posts/{post['id']}", json={"body": "Turnout 50.4%"},
                     headers={"X-CSRF-Token": desk.csrf})
    before = await snapshot(db)
    stale = await desk.post(url, data={"csrf_token": desk.csrf, "revision": revision,
                                       "body": "Turnout 51%"})
    assert stale.status_code == 412
    assert "someone else saved this post" in stale.text
    assert ">Turnout 51%</textarea>" in stale.text and ">Turnout 50.4%</textarea>" in stale.text
    assert await snapshot(db) == before
    again = await desk.post(url, data={"csrf_token": desk.csrf,
                                       "revision": field(stale.text, "revision"),
                                       "body": "Turnout 51%"})
    assert again.status_code == 303
    assert (await desk.get(f"/api/posts/{post['id']}")).json()["body"] == "Turnout 51%"

    asked = field((await desk.get(f"/editor/posts/{post['id']}/delete")).text, "revision")
    await desk.patch(f"/api/posts/{post['id']}", json={"body": "Turnout 51.2%"},
                     headers={"X-CSRF-Token": desk.csrf})
    refused = await desk.post(f"/editor/posts/{post['id']}/delete",
                              data={"csrf_token": desk.csrf, "revision": asked})
    assert refused.status_code == 412 and "Turnout 51.2%" in refused.text
    assert "someone else changed this post" in refused.text
    assert (await desk.get(f"/api/posts/{post['id']}")).status_code == 200
    deleted = await desk.post(f"/editor/posts/{post['id']}/delete", data={
        "csrf_token": desk.csrf, "revision": field(refused.text, "revision")})
    assert deleted.status_code == 303
    assert (await desk.get(f"/api/posts/{post['id']}")).status_code == 404


async def test_desk_errors_are_html_pages(desk: Any) -> None:
    """Unknown desk addresses, streams and posts are HTML 404 pages, not JSON."""
    for path in ("/editor/nothing-here", "/editor/streams/missing",
                 "/editor/streams/NOT_A_SLUG", "/editor/posts/99/edit",
                 "/editor/posts/99999999999/delete"):
        response = await desk.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path


async def test_the_preview_is_the_published_html(desk: Any) -> None:
    """POST /editor/preview renders Markdown exactly as publishing does; it needs the token."""
    text = "**Breaking**: <script>x</script>\n\nhttps://www.youtube.com/watch?v=dQw4w9WgXcQ"
    response = await desk.post("/editor/preview", json={"body": text},
                               headers={"X-CSRF-Token": desk.csrf})
    assert response.status_code == 200
    assert response.json()["html"] == content.render(text).html
    refused = await desk.post("/editor/preview", json={"body": text})
    assert refused.status_code == 403
    empty = await desk.post("/editor/preview", json={"body": " "},
                            headers={"X-CSRF-Token": desk.csrf})
    assert empty.json()["html"] == ""


# --- admins -----------------------------------------------------------------------------


async def test_admin_pages_are_for_admins_only(desk: Any, db: Database) -> None:
    """An editor gets a 403 page for every admin page and form, and nothing changes."""
    before = await snapshot(db)
    for path in ("/editor/admin/editors", "/editor/admin/tokens"):
        response = await desk.get(path)
        assert response.status_code == 403 and "Admins only" in response.text
    created = await desk.post("/editor/admin/editors", data={
        "csrf_token": desk.csrf, "username": "mallory", "password": "long enough pw",
        "role": "admin"})
    assert created.status_code == 403
    assert await snapshot(db) == before


async def test_admins_manage_editors_and_their_sessions(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """Admins add editors, reset passwords and disable accounts; sessions end with them."""
    root = await make_editor(db, "root", role="admin")
    async with desk_client(app) as admin, desk_client(app) as alice:
        csrf = await sign_in(admin, "root")
        await sign_in(alice)
        added = await admin.post("/editor/admin/editors", data={
            "csrf_token": csrf, "username": "bob", "display_name": "Bob B",
            "role": "editor", "password": "a long password"})
        assert added.status_code == 303
        async with desk_client(app) as bob:
            assert (await try_sign_in(bob, "bob", "a long password")).status_code == 303
        short = await admin.post("/editor/admin/editors", data={
            "csrf_token": csrf, "username": "carol", "password": "short"})
        assert short.status_code == 422 and "at least 10 characters" in short.text

        reset = await admin.post(f"/editor/admin/editors/{editor.editor_id}/password",
                                 data={"csrf_token": csrf, "password": ""})
        assert reset.status_code == 200
        new_password = field(reset.text, "secret")
        assert (await alice.get("/editor")).status_code == 303  # signed out by the reset
        async with desk_client(app) as again:
            assert (await try_sign_in(again, "alice", new_password)).status_code == 303
        alice_csrf = await sign_in_with(alice, new_password)

        disabled = await admin.post(f"/editor/admin/editors/{editor.editor_id}/disable",
                                    data={"csrf_token": csrf})
        assert disabled.status_code == 303
        assert (await alice.get("/editor")).status_code == 303
        write = await alice.post("/api/streams", json={"slug": "x", "title": "X"},
                                 headers={"X-CSRF-Token": alice_csrf})
        assert write.status_code == 401
        assert (await try_sign_in(alice, "alice", new_password)).status_code == 401
        self_disable = await admin.post(f"/editor/admin/editors/{root.editor_id}/disable",
                                        data={"csrf_token": csrf})
        assert self_disable.status_code == 409
        assert (await admin.get("/editor")).status_code == 200


async def sign_in_with(client: httpx.AsyncClient, password: str) -> str:
    """Sign alice in with a new password; the session's CSRF token."""
    assert (await try_sign_in(client, "alice", password)).status_code == 303
    return meta_csrf((await client.get("/editor")).text)


async def test_admins_create_and_revoke_api_tokens(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """A token made on the tokens page is shown once and works; revoking stops it."""
    await make_editor(db, "root", role="admin")
    async with desk_client(app) as admin:
        csrf = await sign_in(admin, "root")
        made = await admin.post("/editor/admin/tokens", data={
            "csrf_token": csrf, "editor_id": str(editor.editor_id), "name": "importer"})
        assert made.status_code == 200
        token = field(made.text, "secret")
        assert token.startswith("blt_")
        listed = await admin.get("/editor/admin/tokens")
        assert "importer" in listed.text and token not in listed.text
        auth = {"Authorization": f"Bearer {token}"}
        assert (await admin.get("/api/me", headers=auth)).json()["username"] == "alice"
        token_id = re.findall(r"/editor/admin/tokens/(\d+)/revoke", listed.text)[0]
        revoked = await admin.post(f"/editor/admin/tokens/{token_id}/revoke",
                                   data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert (await admin.get("/api/me", headers=auth)).status_code == 401


@pytest.mark.parametrize(("password", "message"), [
    ("Password123", "one of the most common passwords"),
    ("QWERTYUIOP", "one of the most common passwords"),
    (" iloveyou123 ", "one of the most common passwords"),
    (" " * 12, "only spaces or control characters"),
    ("\x00" * 10, "only spaces or control characters"),
    ("\t\r\n\x1b" * 3, "only spaces or control characters"),
])
async def test_weak_passwords_are_refused_by_the_admin_forms(
    app: Starlette, editor: EditorLogin, db: Database, password: str, message: str
) -> None:
    """A common password (in any case) or one of only spaces or control characters is a
    422 on the add-editor and the reset-password forms, and changes nothing."""
    await make_editor(db, "root", role="admin")
    async with desk_client(app) as admin:
        csrf = await sign_in(admin, "root")
        before = await snapshot(db)
        added = await admin.post("/editor/admin/editors", data={
            "csrf_token": csrf, "username": "bob", "role": "editor", "password": password})
        assert added.status_code == 422 and message in added.text
        reset = await admin.post(f"/editor/admin/editors/{editor.editor_id}/password",
                                 data={"csrf_token": csrf, "password": password})
        assert reset.status_code == 422 and message in reset.text
        assert await snapshot(db) == before


async def test_unicode_digits_in_the_token_form_are_refused(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """An editor id in other scripts' digits ("²", "٣") is a 422 "Choose an editor", never
    a 500, nor a token for the editor whose id int() would read."""
    await make_editor(db, "root", role="admin")
    carol = await make_editor(db, "carol")
    assert carol.editor_id == 3  # what int("٣") reads
    async with desk_client(app) as admin:
        csrf = await sign_in(admin, "root")
        before = await snapshot(db)
        for raw in ("²", "٣", "1²", "\uff13"):  # the last: a fullwidth 3
            made = await admin.post("/editor/admin/tokens", data={
                "csrf_token": csrf, "editor_id": raw, "name": "importer"})
            assert made.status_code == 422, raw
            assert "Choose an editor." in made.text
        assert await snapshot(db) == before


async def test_desk_changes_that_take_access_away_are_announced_after_commit(
    app: Starlette, editor: EditorLogin, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resetting a password, disabling, revoking and signing out each tell open
    connections (HubDriver.credentials_changed) once committed; enabling and creating do not."""
    seen: list[tuple[int, int, int]] = []

    async def credentials_changed(self: HubDriver) -> None:
        counts = []
        async with db.engine.connect() as conn:
            for sql in ("SELECT count(*) FROM editors WHERE disabled",
                        "SELECT count(*) FROM editor_sessions",
                        "SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL"):
                counts.append(int((await conn.execute(sa.text(sql))).scalar_one()))
        seen.append((counts[0], counts[1], counts[2]))

    monkeypatch.setattr(HubDriver, "credentials_changed", credentials_changed)
    await make_editor(db, "root", role="admin")
    alice_page = f"/editor/admin/editors/{editor.editor_id}"
    async with desk_client(app) as admin, desk_client(app) as alice:
        csrf = await sign_in(admin, "root")
        await sign_in(alice)
        made = await admin.post("/editor/admin/tokens", data={
            "csrf_token": csrf, "editor_id": str(editor.editor_id), "name": "importer"})
        assert made.status_code == 200 and seen == []
        reset = await admin.post(f"{alice_page}/password",
                                 data={"csrf_token": csrf, "password": "a new long password"})
        assert reset.status_code == 303 and seen == [(0, 1, 0)]
        await sign_in_with(alice, "a new long password")
        assert (await admin.post(f"{alice_page}/disable",
                                 data={"csrf_token": csrf})).status_code == 303
        assert seen[-1] == (1, 1, 0)
        listed = await admin.get("/editor/admin/tokens")
        token_id = re.findall(r"/editor/admin/tokens/(\d+)/revoke", listed.text)[0]
        assert (await admin.post(f"/editor/admin/tokens/{token_id}/revoke",
                                 data={"csrf_token": csrf})).status_code == 303
        assert seen[-1] == (1, 1, 1)
        assert (await admin.post(f"{alice_page}/enable",
                                 data={"csrf_token": csrf})).status_code == 303
        assert len(seen) == 3
        await sign_out(admin)
        assert seen[-1] == (0, 0, 1)


async def test_admins_create_scoped_expiring_tokens_and_see_them_listed(
    app: Starlette, editor: EditorLogin, db: Database
) -> None:
    """The tokens page makes a token with a scope, streams and a lifetime, says so once, and
    lists each token's scope, streams and expiry; a bad lifetime, an unknown stream or a
    scope above the editor's role is the form again with the message, and nothing is made."""
    root = await make_editor(db, "root", role="admin")
    async with db.write() as session:
        for slug in ("vote", "match"):
            await eventlog.create_stream(session, slug=slug, title=slug, description="",
                                         status="live")
    async with desk_client(app) as admin:
        csrf = await sign_in(admin, "root")
        page = await admin.get("/editor/admin/tokens")
        assert 'name="scope"' in page.text and 'name="expires_in"' in page.text
        assert '<option value="write" selected>' in page.text
        before = await snapshot(db)
        for form, message in [({"expires_in": "soon"}, "Invalid duration &#39;soon&#39;"),
                              ({"streams": "vote, nowhere"}, "No stream &#39;nowhere&#39;"),
                              ({"scope": "admin"}, "alice&#39;s role is editor"),
                              ({"scope": "root"}, "Scope must be one of read, write, admin")]:
            refused = await admin.post("/editor/admin/tokens", data={
                "csrf_token": csrf, "editor_id": str(editor.editor_id), "name": "feed", **form})
            assert refused.status_code in (404, 422), form
            assert message in refused.text, form
            assert 'value="feed"' in refused.text  # the form keeps what was typed
        assert await snapshot(db) == before
        made = await admin.post("/editor/admin/tokens", data={
            "csrf_token": csrf, "editor_id": str(editor.editor_id), "name": "importer",
            "scope": "read", "streams": "vote match", "expires_in": "12h"})
        assert made.status_code == 200
        assert "Scope: read. Streams: match, vote. Expires: 20" in made.text
        token = field(made.text, "secret")
        me = (await admin.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json()
        assert me["token"]["scope"] == "read" and me["token"]["streams"] == ["match", "vote"]
        expires = datetime.fromisoformat(me["token"]["expires_at"])
        assert timedelta(hours=11, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=12)
        listed = await admin.get("/editor/admin/tokens")
        rows = re.findall(r"<tr>(.*?)</tr>", listed.text, re.S)
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[1], re.S)]
        assert cells[1:6] == ["alice", "importer", "read", "match, vote",
                              f"{expires:%H:%M UTC, %-d %b %Y}"]
        assert f'datetime="{expires:%Y-%m-%dT%H:%M:%S}.{expires.microsecond // 1000:03d}Z"' \
            in rows[1]
        assert cells[7] != "never"  # used just now, by /api/me
        older = [[re.sub(r"<[^>]+>", "", c).strip()
                  for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)][1:6]
                 for row in rows[2:]]
        assert older == [["root", "tests", "admin", "all", "never"],
                         ["alice", "tests", "write", "all", "never"]]
        assert root.token not in listed.text and token not in listed.text
        assert "expired</span>" not in listed.text
        async with db.write() as session:
            await session.exec(sa.update(ApiToken).where(
                ApiToken.name == "importer").values(expires_at=utcnow() - timedelta(minutes=1)))
        listed = await admin.get("/editor/admin/tokens")
        rows = re.findall(r"<tr>(.*?)</tr>", listed.text, re.S)
        assert "expired</span>" in rows[1] and "/revoke" in rows[1]
        assert all("expired</span>" not in row for row in rows[2:])
