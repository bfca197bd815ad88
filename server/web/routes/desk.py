"""The editor desk at /editor: signing in and out, streams, composing and managing posts.

Every page is rendered on the server and every action is a plain form POST answered with
a 303 back to the page and a flash message, so the desk works without JavaScript;
``client_js/editor.js`` enhances the stream page (live preview, posting with fetch, edit
in place, the live list). Forms carry the session's CSRF token; the sign-in form carries
one bound to a pre-session cookie. The plumbing is in ``web/deskforms.py``, the admin
pages in ``admin.py``. Writes go through the same functions the API's do (validation,
``idempotency.run_once``, ``writes.commit``), not through the API's HTTP layer.
"""

from __future__ import annotations

import html
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from ...core import content
from ...core.access import Act
from ...core.errors import ApiError
from ...store import accounts, drafts, eventlog, people, sessions
from ...store.models import Editor, Event
from ..callers import (
    caller,
    is_contributor,
    limit_writes,
    new_post_status,
    permit,
    permit_post,
    signed_in,
)
from ..deskforms import (
    Desk,
    client_address,
    desk_endpoint,
    error_page,
    field_values,
    friendly,
    new_key,
    page,
    post_fields,
    publish_time,
    read_form,
    redirect,
    render,
    safe_next,
    secure_cookies,
    signed_form,
)
from ..idempotency import Created, run_once
from ..latecards import embed_later
from ..services import services
from ..templating import clock, isotime, origin
from ..validation import (
    PostCreate,
    PostPatch,
    StreamCreate,
    StreamPatch,
    ascii_int,
    check_post_length,
    checked_post_id,
    checked_slug,
    parse_body,
    read_body,
    validated,
)
from ..writes import commit

POSTS_SHOWN = 50
# Posts that wait, listed above the published ones: enough for a night's queue.
WAITING_SHOWN = 100
# Set on signing in: this browser has signed in to this account before, so its failed
# sign-ins spend from a budget of their own (see login). Browsers keep a cookie for at
# most 400 days.
DEVICE_COOKIE = "bulletin_device"
DEVICE_SECONDS = 365 * 24 * 3600
STREAMS_SHOWN = 100

# --- signing in and out ------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    """GET /editor/login: the sign-in form (straight on to ``next`` when signed in)."""
    target = safe_next(request.query_params.get("next"))
    if await signed_in(request) is not None:
        return RedirectResponse(target, 303)
    return _login_form(request, target, status=200, error=None, username="")


def _login_form(request: Request, target: str, *, status: int, error: str | None,
                username: str, headers: dict[str, str] | None = None) -> Response:
    settings = services(request).settings
    nonce = request.cookies.get(sessions.LOGIN_COOKIE) or sessions.new_secret()
    response = render(request, None, "editor/login.html", {
        "next": target, "login_csrf": sessions.login_csrf(settings, nonce), "error": error,
        "username": username,
    }, status=status, headers=headers)
    response.set_cookie(sessions.LOGIN_COOKIE, nonce, max_age=sessions.LOGIN_FORM_SECONDS,
                        path="/editor", httponly=True, samesite="lax",
                        secure=secure_cookies(request))
    return response


async def login(request: Request) -> Response:
    """POST /editor/login: check the password, open a session, set the cookies."""
    svc = services(request)
    try:
        data = await read_form(request)
    except ApiError as exc:
        return error_page(request, None, exc.status, None, exc.message)
    target = safe_next(data.get("next"))
    username = data.get("username", "").strip().lower()[:64]
    if not sessions.login_csrf_ok(svc.settings, request.cookies.get(sessions.LOGIN_COOKIE),
                                  data.get(sessions.CSRF_FIELD)):
        return _login_form(request, target, status=403, username=username,
                           error="The sign-in form had expired. Please sign in again.")
    # Every attempt spends from the address's budget, and none is checked once it is
    # spent: a correct guess then looks exactly like a wrong one.
    wait = svc.auth_failures.take(client_address(request), svc.clock())
    if wait:
        retry = svc.auth_failures.retry_after_header(wait)
        return _login_form(request, target, status=429, username=username,
                           error=f"Too many sign-in attempts. Wait {retry} seconds and retry.",
                           headers={"Retry-After": retry})
    async with svc.db.read() as session:
        found = await accounts.find_editor(session, username=username)
    # Failures also spend from the account's budget, from whatever address, so that many
    # addresses cannot share the guessing; and, as above, none is checked once it is
    # spent. A browser that signed in to the account before spends from a budget of its
    # own instead, so that such guessing cannot lock the account's editor out.
    device = _device(request)
    if found is not None and device is not None and device[0] == found.id:
        budget = f"device:{found.id}:{device[1]}"
    else:
        budget = f"account:{username}"
    wait = svc.account_failures.take(budget, svc.clock())
    if wait:
        retry = svc.account_failures.retry_after_header(wait)
        return _login_form(request, target, status=429, username=username,
                           error="This account is temporarily locked after too many failed "
                                 f"sign-ins. Wait {retry} seconds and retry.",
                           headers={"Retry-After": retry})
    editor = accounts.check_password(found, data.get("password", ""))
    if editor is None:
        return _login_form(request, target, status=401, username=username,
                           error="That username and password do not match an active account.")
    svc.account_failures.refund(budget)  # only failures spend
    async with svc.db.write() as session:
        old = request.cookies.get(sessions.COOKIE)
        if old:
            await sessions.end(session, plain=old)
        _row, plain = await sessions.start(
            session, settings=svc.settings, editor=editor,
            user_agent=request.headers.get("user-agent", ""), ip=client_address(request))
    # A browser keeps its device nonce for as long as it signs in to the same account.
    nonce = device[1] if device is not None and device[0] == editor.id else sessions.new_secret()
    response = RedirectResponse(target, 303)
    response.set_cookie(sessions.COOKIE, plain, path="/", httponly=True, samesite="lax",
                        secure=secure_cookies(request))
    response.set_cookie(DEVICE_COOKIE, sessions.sign(svc.settings, f"device.{editor.id}.{nonce}"),
                        max_age=DEVICE_SECONDS, path="/editor", httponly=True, samesite="lax",
                        secure=secure_cookies(request))
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/editor")
    return response


def _device(request: Request) -> tuple[int, str] | None:
    """The editor id and nonce of the browser's device cookie, when the server signed it."""
    value = sessions.unsign(services(request).settings, request.cookies.get(DEVICE_COOKIE))
    kind, _, rest = (value or "").partition(".")
    raw_id, _, nonce = rest.partition(".")
    editor_id = ascii_int(raw_id, max_digits=10)
    if kind != "device" or editor_id is None or not nonce:
        return None
    return editor_id, nonce


async def logout(request: Request) -> Response:
    """POST /editor/logout: delete the session and the cookie."""
    found = await signed_in(request)
    if found is not None:
        checked = await signed_form(request, found)
        if isinstance(checked, Response):
            return checked
        async with services(request).db.write() as session:
            await sessions.end(session, plain=request.cookies.get(sessions.COOKIE, ""))
        await services(request).live.credentials_changed()
    # The device cookie stays: this browser has still signed in to the account before.
    response = redirect(request, "/editor/login", "You are signed out.")
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="lax",
                           secure=secure_cookies(request))
    return response


# --- streams -----------------------------------------------------------------------------


@desk_endpoint()
async def streams_page(request: Request, desk: Desk) -> Response:
    """GET /editor: every stream, newest first, and the form to start one."""
    return await _streams(request, desk, status=200, values={}, error=None)


async def _streams(request: Request, desk: Desk, *, status: int, values: dict[str, str],
                   error: str | None) -> Response:
    async with services(request).db.read() as session:
        streams, _next = await eventlog.list_streams(session, include_drafts=True,
                                                  limit=STREAMS_SHOWN)
    return render(request, desk.signed_in, "editor/streams.html", {
        "section": "streams", "streams": streams, "values": values, "error": error,
        "readers": services(request).live.readers(s.slug for s in streams),
        "idempotency_key": values.get("idempotency_key") or new_key(),
    }, status=status)


@desk_endpoint()
async def create_stream(request: Request, desk: Desk) -> Response:
    """POST /editor/streams: start a stream, then go to its page."""
    values = {k: desk.form.get(k, "").strip() for k in ("slug", "title", "description")}
    values["status"] = "live" if desk.form.get("status") == "live" else "draft"
    values["idempotency_key"] = desk.form.get("idempotency_key", "")
    try:
        permit(request, desk.editor, Act.CREATE_STREAM)
        limit_writes(request, desk.editor)
        fields = {k: values[k] for k in ("slug", "title", "description", "status")}
        data, raw = validated(fields, StreamCreate)

        async def create(session: AsyncSession) -> Created:
            stream = await eventlog.create_stream(
                session, slug=data.slug, title=data.title, description=data.description,
                status=data.status)
            return 201, {"slug": stream.slug}, stream.slug, []

        await run_once(request, desk.editor, raw, create, key=values["idempotency_key"] or None)
    except ApiError as exc:
        return await _streams(request, desk, status=exc.status, values=values,
                              error=friendly(exc))
    return redirect(request, f"/editor/streams/{data.slug}",
                    f"Stream “{data.title}” created" + (" and live." if data.status == "live"
                                                       else " as a draft."))


@desk_endpoint()
async def stream_page(request: Request, desk: Desk) -> Response:
    """GET /editor/streams/{slug}: compose, the posts, the stream's settings and embed code."""
    return await _stream(request, desk, request.path_params["slug"], status=200,
                         compose={}, error=None)


async def _stream(request: Request, desk: Desk, slug: str, *, status: int,
                  compose: dict[str, str], error: str | None) -> Response:
    svc = services(request)
    cursor = ascii_int(request.query_params.get("before"), max_digits=9)
    async with svc.db.read() as session:
        stream = await eventlog.get_stream(session, slug=_slug(slug), include_drafts=True)
        views, next_cursor = await eventlog.list_posts(session, stream=stream, before=cursor,
                                                    limit=POSTS_SHOWN)
        directory = await people.list_people(session)
        assert stream.id is not None and desk.editor.id is not None
        # The version of the editor's draft on the server, so that the desk's script
        # asks for it only when there is one.
        server_draft = await drafts.get_draft(session, editor_id=desk.editor.id,
                                              stream_id=stream.id)
        waiting = await _waiting(session, stream, desk.editor)
    base = origin(request)
    snippet = (f'<iframe src="{base}/embed/{stream.slug}" '
               f'title="{html.escape(stream.title, quote=True)}: live updates" width="100%" '
               'height="640" loading="lazy" style="border:0"></iframe>')
    return render(request, desk.signed_in, "editor/stream.html", {
        "section": "streams", "stream": stream, "posts": [post_context(v) for v in views],
        "blank": BLANK_POST, "older": next_cursor, "paged": cursor is not None,
        "snippet": snippet, "reader_url": f"/live/{stream.slug}",
        "compose": {"body": compose.get("body", ""), "pinned": compose.get("pinned") == "1",
                    "key": compose.get("idempotency_key") or new_key(),
                    "publish_at_local": compose.get("publish_at_local", ""),
                    **field_values(compose)},
        "people": directory, "contributor": is_contributor(desk.editor), **waiting,
        "server_draft": server_draft.version if server_draft else None,
        "error": error, "max_chars": svc.settings.max_post_chars,
        "readers": svc.live.readers((stream.slug,))[stream.slug],
    }, status=status)


async def _waiting(session: AsyncSession, stream: Any, editor: Editor) -> dict[str, Any]:
    """The stream's posts that wait, as the stream page lists them: those awaiting
    approval (a contributor's own only) and, for editors, the scheduled ones by time."""
    mine = editor.id if is_contributor(editor) else None
    awaiting = []
    for status in ("submitted", "returned"):
        views, _next = await eventlog.list_posts(session, stream=stream, before=None,
                                                 limit=WAITING_SHOWN, status=status,
                                                 author_id=mine)
        awaiting.extend(views)
    upcoming: list[eventlog.PostView] = []
    if mine is None:
        upcoming, _next = await eventlog.list_posts(
            session, stream=stream, before=None, limit=WAITING_SHOWN, status="scheduled")
    awaiting.sort(key=lambda v: v.post.id or 0)
    upcoming.sort(key=lambda v: (v.post.publish_at or v.post.created_at, v.post.id or 0))
    return {"awaiting": [post_context(v) for v in awaiting],
            "upcoming": [post_context(v) for v in upcoming]}


# The post template editor.js clones for posts that arrive live; it fills in the rest.
BLANK_POST = {"id": "__ID__", "body": "", "html": "", "pinned": False, "author": "",
              "revision": "", "created_iso": "", "created_text": "", "edited": False,
              "media": [], "headline": "", "tags": [], "contributors": [], "bylines": ""}


def post_context(view: eventlog.PostView) -> dict[str, Any]:
    """What the post list shows of a post."""
    post = view.post
    return {"id": post.id, "body": post.body, "html": post.html, "pinned": post.pinned,
            "revision": post.revision,
            "author": view.author.display_name if view.author else "",
            "created_iso": isotime(post.created_at), "created_text": clock(post.created_at),
            "edited": post.edited_at is not None, "media": list(post.media),
            "headline": post.headline, "tags": list(post.tags),
            "contributors": [p.id for p in view.contributors],
            "bylines": ", ".join(p.name for p in view.contributors),
            "status": post.status, "note": post.note,
            "publish_iso": isotime(post.publish_at), "publish_text": clock(post.publish_at),
            "publish_local": post.publish_at.strftime("%Y-%m-%dT%H:%M")
            if post.publish_at else ""}


def _slug(slug: str) -> str:
    return checked_slug(slug)


@desk_endpoint()
async def stream_details(request: Request, desk: Desk) -> Response:
    """POST /editor/streams/{slug}/details: change the title and description."""
    slug = _slug(request.path_params["slug"])
    try:
        data, _raw = validated({"title": desk.form.get("title", ""),
                                "description": desk.form.get("description", "")}, StreamPatch)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, friendly(exc)) from None
    await _update_stream(request, desk, slug, title=data.title, description=data.description)
    return redirect(request, f"/editor/streams/{slug}", "Title and description saved.")


@desk_endpoint()
async def end_stream_page(request: Request, desk: Desk) -> Response:
    """GET /editor/streams/{slug}/end: what ending the story does to readers; ask first."""
    async with services(request).db.read() as session:
        stream = await eventlog.get_stream(session, slug=_slug(request.path_params["slug"]),
                                           include_drafts=True)
    return render(request, desk.signed_in, "editor/stream_end.html", {
        "section": "streams", "stream": stream, "reader_url": f"/live/{stream.slug}"})


@desk_endpoint()
async def stream_status(request: Request, desk: Desk) -> Response:
    """POST /editor/streams/{slug}/status: go live, end (once asked: ``confirm``), or
    reopen."""
    slug = _slug(request.path_params["slug"])
    status = desk.form.get("status", "")
    if status not in ("live", "ended"):
        raise ApiError(422, "invalid_status", "Choose to go live or to end the stream.")
    if status == "ended" and desk.form.get("confirm") != "1":
        # Every reader sees it at once: only the question's own form ends a story.
        return RedirectResponse(f"/editor/streams/{slug}/end", status_code=303)
    await _update_stream(request, desk, slug, status=status)
    return redirect(request, f"/editor/streams/{slug}",
                    "The stream is live." if status == "live" else "The stream has ended.")


async def _update_stream(request: Request, desk: Desk, slug: str, **changes: Any) -> None:
    permit(request, desk.editor, Act.CHANGE_STREAM, stream=slug)
    limit_writes(request, desk.editor)

    async def change(session: AsyncSession) -> tuple[None, str, list[Event]]:
        _stream, events = await eventlog.update_stream(session, slug=slug, **changes)
        return None, slug, events

    await commit(services(request), change)


# --- posts -------------------------------------------------------------------------------


@desk_endpoint()
async def create_post(request: Request, desk: Desk) -> Response:
    """POST /editor/streams/{slug}/posts: publish (the no-JavaScript path)."""
    slug = _slug(request.path_params["slug"])
    body = desk.form.get("body", "").replace("\r\n", "\n")
    compose = {"body": body, "pinned": "1" if desk.form.get("pinned") else "",
               "idempotency_key": desk.form.get("idempotency_key", ""),
               **{k: desk.form.get(k, "") for k in ("headline", "tags", "contributors",
                                                    "publish_at_local")}}
    editor = desk.editor
    when = publish_time(desk.form)
    try:
        if compose["pinned"]:
            permit(request, desk.editor, Act.PIN, stream=slug)
        limit_writes(request, desk.editor)
        data, raw = validated({"body": body, "pinned": bool(compose["pinned"]),
                               **post_fields(desk.form),
                               **({"publish_at": when} if when else {})}, PostCreate)
        svc = services(request)
        check_post_length(data.body, svc.settings.max_post_chars)
        status = new_post_status(editor, data.publish_at)
        book = await svc.cards.gather(data.body)

        async def create(session: AsyncSession) -> Created:
            view, events = await eventlog.create_post(
                session, slug=slug, author=editor, body=data.body, pinned=data.pinned,
                cards=book, headline=data.headline, tags=data.tags,
                contributors=data.contributors, status=status, publish_at=data.publish_at)
            await drafts.discard_posted(session, author=editor,
                                        stream_id=view.post.stream_id,
                                        key=compose["idempotency_key"] or None)
            return 201, view.to_desk_json() | {"seq": events[-1].seq if events else None}, \
                slug, events

        outcome = await run_once(request, editor, raw, create,
                                 key=compose["idempotency_key"] or None)
        if not outcome.replayed:
            embed_later(svc, post_id=outcome.body["id"], body=data.body, book=book)
    except ApiError as exc:
        if exc.code in ("stream_not_found", "invalid_idempotency_key"):
            raise
        empty = not body.strip()
        return await _stream(request, desk, slug, status=exc.status, compose=compose,
                             error="Write something to post." if empty else friendly(exc))
    post_id = outcome.body["id"]
    said = {"submitted": "Sent to the desk for approval.",
            "scheduled": "Scheduled."}.get(outcome.body.get("status", ""), "Posted.")
    if outcome.replayed:
        said = "That post was already published." if said == "Posted." else \
            "That post was already sent."
    place = "queue" if outcome.body.get("status", "published") != "published" else \
        f"post-{post_id}"
    return redirect(request, f"/editor/streams/{slug}#{place}", said)


async def _post(request: Request, editor: Editor | None = None) -> Any:
    post_id = checked_post_id(request.path_params["id"])
    async with services(request).db.read() as session:
        return await eventlog.get_post(
            session, post_id=post_id, include_drafts=True,
            waiting=True if editor is None or not is_contributor(editor) else editor.id or 0)


async def _edit_page(request: Request, desk: Desk, view: eventlog.PostView, *, body: str,
                     fields: dict[str, Any], error: str | None, status: int = 200,
                     theirs: dict[str, Any] | None = None) -> Response:
    async with services(request).db.read() as session:
        directory = await people.list_people(session)
    return render(request, desk.signed_in, "editor/post_edit.html", {
        "post": view, "body": body, "fields": fields, "people": directory, "error": error,
        "theirs": theirs,
    }, status=status)


@desk_endpoint()
async def edit_post_page(request: Request, desk: Desk) -> Response:
    """GET /editor/posts/{id}/edit: the edit form (the no-JavaScript path)."""
    view = await _post(request, desk.editor)
    post = view.post
    return await _edit_page(request, desk, view, body=post.body, error=None, fields={
        "headline": post.headline, "tags": ", ".join(post.tags),
        "contributors": list(post.contributors)})


def _revision_field(desk: Desk) -> frozenset[int] | None:
    """The revision the form was made from (its hidden field), as If-Match would name it;
    None for a form without one, which changes the post whatever its revision."""
    raw = desk.form.get("revision", "")
    return frozenset({int(raw)}) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


@desk_endpoint()
async def edit_post(request: Request, desk: Desk) -> Response:
    """POST /editor/posts/{id}/edit: save a corrected text, headline, tags and bylines,
    unless someone else saved since the form was made: then the form comes back with
    both texts."""
    view = await _post(request, desk.editor)
    body = desk.form.get("body", "").replace("\r\n", "\n")
    try:
        data, _raw = validated({"body": body, **post_fields(desk.form)}, PostPatch)
        assert data.body is not None
        check_post_length(data.body, services(request).settings.max_post_chars)
        await _change_post(request, desk, view.post.id, body=data.body,
                           headline=data.headline, tags=data.tags,
                           contributors=data.contributors,
                           contributor=is_contributor(desk.editor),
                           expected_revision=_revision_field(desk))
    except eventlog.StaleRevision as stale:
        return await _edit_page(
            request, desk, await _post(request, desk.editor), body=body,
            fields=field_values(desk.form), theirs=stale.current, status=412,
            error="Not saved: someone else saved this post while you were editing. "
                  "Your text is still in the box and their version is below it: keep "
                  "yours and save again, or copy what you need from theirs first.")
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _edit_page(request, desk, view, body=body,
                                fields=field_values(desk.form), error=friendly(exc),
                                status=exc.status)
    return redirect(request, f"/editor/streams/{view.stream_slug}#post-{view.post.id}",
                    "Post updated.")


@desk_endpoint()
async def delete_post_page(request: Request, desk: Desk) -> Response:
    """GET /editor/posts/{id}/delete: ask before deleting (the no-JavaScript path)."""
    view = await _post(request, desk.editor)
    return render(request, desk.signed_in, "editor/post_delete.html",
                  {"post": view, "changed": False})


@desk_endpoint()
async def delete_post(request: Request, desk: Desk) -> Response:
    """POST /editor/posts/{id}/delete: delete (or cancel a post that waits); readers see
    a published one go. A post changed since the question was asked is shown again, and
    the question with it."""
    view = await _post(request, desk.editor)
    contributor = is_contributor(desk.editor)
    await permit_post(request, desk.editor, view.post.id, delete=not contributor,
                      edit=contributor)
    limit_writes(request, desk.editor)
    expected = _revision_field(desk)

    async def change(session: AsyncSession) -> tuple[None, str, list[Event]]:
        _view, events = await eventlog.delete_post(session, post_id=view.post.id,
                                                   editor=desk.editor,
                                                   contributor=contributor,
                                                   expected_revision=expected)
        return None, view.stream_slug, events

    try:
        await commit(services(request), change)
    except eventlog.StaleRevision:
        return render(request, desk.signed_in, "editor/post_delete.html",
                      {"post": await _post(request, desk.editor), "changed": True},
                      status=412)
    return redirect(request, f"/editor/streams/{view.stream_slug}",
                    "Cancelled: it will not be published." if view.post.status == "scheduled"
                    else "Post deleted.")


@desk_endpoint()
async def pin_post(request: Request, desk: Desk) -> Response:
    """POST /editor/posts/{id}/pin: make a post a key event (pinned=1) or not (0)."""
    view = await _post(request, desk.editor)
    pinned = desk.form.get("pinned") == "1"
    await _change_post(request, desk, view.post.id, pinned=pinned)
    return redirect(request, f"/editor/streams/{view.stream_slug}#post-{view.post.id}",
                    "Pinned as a key event." if pinned else "Unpinned.")


async def _change_post(request: Request, desk: Desk, post_id: int, **changes: Any) -> None:
    await permit_post(request, desk.editor, post_id, edit="body" in changes,
                      pin="pinned" in changes)
    limit_writes(request, desk.editor)
    svc = services(request)
    body = changes.get("body")
    book = None if body is None else await svc.cards.gather(body)

    async def change(session: AsyncSession) -> tuple[None, str, list[Event]]:
        view, events = await eventlog.edit_post(session, post_id=post_id, editor=desk.editor,
                                                cards=book, **changes)
        return None, view.stream_slug, events

    await commit(svc, change)
    if book is not None and body is not None:
        embed_later(svc, post_id=post_id, body=body, book=book)


async def preview(request: Request) -> Response:
    """POST /editor/preview: the HTML a Markdown text publishes as, its cards and what the
    editor should know (``notices``: an image removed, a card a provider did not give)."""
    try:
        await caller(request, required=True)
        raw = await read_body(request, max_bytes=services(request).settings.max_body_bytes)
        data = parse_body(raw, PostPatch)
    except ApiError as exc:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)
    body = data.body or ""
    # The cards as readers will see them: fetched (and kept a while, so that typing does
    # not fetch again), waiting as long as publishing would.
    book = await services(request).cards.gather(body)
    try:
        rendered = content.render(body, book)
    except content.ContentError as exc:
        return JSONResponse({"html": "", "embeds": [], "chars": len(body),
                             "notices": [n.to_json() for n in exc.notices]})
    notices = [*rendered.notices, *content.card_notices(rendered.cards)]
    return JSONResponse({"html": rendered.html, "chars": len(body),
                         "embeds": rendered.embeds_json(),
                         "notices": [n.to_json() for n in notices]})


@desk_endpoint()
async def not_found_page(request: Request, desk: Desk) -> Response:
    """Any other /editor address: an HTML 404 (after the sign-in check)."""
    return error_page(request, desk.signed_in, 404, "Not found",
                      "There is nothing at this address on the desk.", back="/editor")


def routes() -> list[BaseRoute]:
    """The desk's routes (the admin pages' come from ``admin.routes``, before the
    catch-all: see ``app.py``)."""
    return [
        page("/editor", streams_page, "GET"),
        page("/editor/login", login_page, "GET"),
        page("/editor/login", login, "POST"),
        page("/editor/logout", logout, "POST"),
        page("/editor/preview", preview, "POST"),
        page("/editor/streams", create_stream, "POST"),
        page("/editor/streams/{slug}", stream_page, "GET"),
        page("/editor/streams/{slug}/details", stream_details, "POST"),
        page("/editor/streams/{slug}/end", end_stream_page, "GET"),
        page("/editor/streams/{slug}/status", stream_status, "POST"),
        page("/editor/streams/{slug}/posts", create_post, "POST"),
        page("/editor/posts/{id:int}/edit", edit_post_page, "GET"),
        page("/editor/posts/{id:int}/edit", edit_post, "POST"),
        page("/editor/posts/{id:int}/delete", delete_post_page, "GET"),
        page("/editor/posts/{id:int}/delete", delete_post, "POST"),
        page("/editor/posts/{id:int}/pin", pin_post, "POST"),
    ]


def catch_all() -> list[BaseRoute]:
    """Any other address under /editor: the desk's HTML 404, mounted after every desk
    route (the admin pages' too)."""
    return [page("/editor/{rest:path}", not_found_page, "GET", "POST")]
