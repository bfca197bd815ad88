"""The editor desk through the ASGI app, on SQLite and PostgreSQL: sign-in, sessions,
CSRF, posting without JavaScript, the session cookie on the API, admin pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from server import content
from server.db import Database
from server.models import utcnow
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


def desk_client(app: Starlette, base: str = "http://testserver") -> httpx.AsyncClient:
    """A browser-like client of the app (it keeps cookies)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


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
        for _ in range(10):
            assert (await try_sign_in(client, "alice", "wrong password!")).status_code == 401
        limited = await try_sign_in(client, "alice", "wrong password!")
        right = await try_sign_in(client, "alice", PASSWORD)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in limited.text
    assert right.status_code == 429


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
    assert "The stream is live." in shown.text and "End stream" in shown.text
    stream = (await desk.get("/api/streams/vote")).json()
    assert (stream["title"], stream["status"]) == ("Vote night", "live")
    await desk.post("/editor/streams/vote/status",
                    data={"csrf_token": desk.csrf, "status": "ended"})
    assert (await desk.get("/api/streams/vote")).json()["status"] == "ended"
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
                                                         "status": "ended"})
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
