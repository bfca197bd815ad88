"""The desk's admin pages: editors (create with a role, disable, reset password) and API
tokens (create with a scope, streams and a lifetime; list; revoke).

Admins only; everyone else gets a 403 page. A generated password and a new token are
shown once, on the page that answers the form, and never stored in plain text. Every
change that takes access away (disabling, a password reset, a revocation) tells
``HubDriver.credentials_changed`` once it has committed, so that open connections end too.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from sqlmodel import col, func, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from ...core.access import ROLES, SCOPES
from ...core.errors import ApiError
from ...durations import parse_duration
from ...store import accounts
from ...store.models import EditorSession, utcnow
from ..deskforms import Desk, desk_endpoint, page, redirect, render
from ..services import services
from ..validation import ascii_int

EDITORS = "/editor/admin/editors"
TOKENS = "/editor/admin/tokens"


async def admin_home(request: Request) -> Response:
    """GET /editor/admin: the editors page."""
    return RedirectResponse(EDITORS, 303)


@desk_endpoint(admin=True)
async def editors_page(request: Request, desk: Desk) -> Response:
    """GET /editor/admin/editors: every editor, and the form to add one."""
    return await _editors(request, desk, status=200, values={}, error=None)


async def _editors(request: Request, desk: Desk, *, status: int, values: dict[str, str],
                   error: str | None) -> Response:
    async with services(request).db.read() as session:
        editors = await accounts.list_editors(session)
        counts = dict((await session.exec(
            select(EditorSession.editor_id, func.count())
            .where(col(EditorSession.expires_at) > utcnow())
            .group_by(col(EditorSession.editor_id)))).all())
    return render(request, desk.signed_in, "editor/admin_editors.html", {
        "editors": editors, "sessions": counts, "values": values, "error": error,
        "section": "editors", "roles": ROLES,
    }, status=status)


@desk_endpoint(admin=True)
async def create_editor(request: Request, desk: Desk) -> Response:
    """POST /editor/admin/editors: add an editor with an initial password."""
    values = {k: desk.form.get(k, "").strip() for k in ("username", "display_name", "role")}
    try:
        async with services(request).db.write() as session:
            editor = await accounts.create_editor(
                session, username=values["username"].lower(),
                display_name=values["display_name"] or None,
                password=desk.form.get("password", ""), role=values["role"] or "editor")
    except ApiError as exc:
        return await _editors(request, desk, status=exc.status, values=values,
                              error=exc.message[:1].upper() + exc.message[1:] + ".")
    return redirect(request, EDITORS, f"Editor {editor.username} created.")


@desk_endpoint(admin=True)
async def disable_editor(request: Request, desk: Desk) -> Response:
    """POST /editor/admin/editors/{id}/disable: no more sign-ins, tokens or sessions."""
    editor_id: int = request.path_params["id"]
    if editor_id == desk.editor.id:
        raise ApiError(409, "cannot_disable_self",
                       "You cannot disable your own account: ask another admin.")
    svc = services(request)
    async with svc.db.write() as session:
        editor = await accounts.set_disabled(session, editor_id=editor_id, disabled=True)
    await svc.live.credentials_changed()
    return redirect(request, EDITORS,
                    f"{editor.username} is disabled and signed out everywhere.")


@desk_endpoint(admin=True)
async def enable_editor(request: Request, desk: Desk) -> Response:
    """POST /editor/admin/editors/{id}/enable: allow an editor back in."""
    async with services(request).db.write() as session:
        editor = await accounts.set_disabled(session, editor_id=request.path_params["id"],
                                             disabled=False)
    return redirect(request, EDITORS, f"{editor.username} is enabled.")


@desk_endpoint(admin=True)
async def reset_password(request: Request, desk: Desk) -> Response:
    """POST /editor/admin/editors/{id}/password: set a typed password, or generate one."""
    typed = desk.form.get("password", "")
    password = typed or secrets.token_urlsafe(12)
    svc = services(request)
    async with svc.db.write() as session:
        editor = await accounts.set_password(
            session, editor_id=request.path_params["id"], password=password,
            keep_session_id=desk.signed_in.session.id)
    await svc.live.credentials_changed()
    if typed:
        return redirect(request, EDITORS,
                        f"Password changed for {editor.username}; their sessions ended.")
    return render(request, desk.signed_in, "editor/admin_secret.html", {
        "section": "", "heading": f"New password for {editor.username}",
        "label": "Password", "secret": password, "back": EDITORS,
        "note": "Give it to them in person or over a trusted channel. It is shown only "
                "once; their earlier sessions have ended.",
    })


@desk_endpoint(admin=True)
async def tokens_page(request: Request, desk: Desk) -> Response:
    """GET /editor/admin/tokens: every API token, and the form to make one."""
    return await _tokens(request, desk, status=200, error=None)


async def _tokens(request: Request, desk: Desk, *, status: int, error: str | None) -> Response:
    settings = services(request).settings
    async with services(request).db.read() as session:
        tokens = await accounts.list_all_tokens(session)
        editors = await accounts.list_editors(session)
    values = {"scope": settings.token_default_scope,
              "expires_in": settings.token_default_expires_in} | desk.form
    return render(request, desk.signed_in, "editor/admin_tokens.html", {
        "tokens": tokens, "editors": editors, "error": error, "section": "tokens",
        "values": values, "scopes": SCOPES, "now": utcnow(),
    }, status=status)


@desk_endpoint(admin=True)
async def create_token(request: Request, desk: Desk) -> Response:
    """POST /editor/admin/tokens: a token for an editor (with a scope, streams and a
    lifetime), shown once."""
    editor_id = ascii_int(desk.form.get("editor_id"), max_digits=9)
    streams = [s for s in re.split(r"[\s,]+", desk.form.get("streams", "")) if s]
    try:
        if editor_id is None:
            raise ApiError(422, "invalid_editor", "choose an editor")
        # A form without the fields (a script's) gets the defaults; the page's own form
        # shows them filled in, so that an emptied lifetime means never.
        settings = services(request).settings
        expires_in = _lifetime(desk.form.get("expires_in", settings.token_default_expires_in))
        async with services(request).db.write() as session:
            editor = await accounts.editor_by_id(session, editor_id=editor_id)
            token, plain = await accounts.create_token(
                session, editor=editor, name=desk.form.get("name", ""),
                scope=desk.form.get("scope") or settings.token_default_scope,
                streams=streams, expires_in=expires_in)
    except ApiError as exc:
        return await _tokens(request, desk, status=exc.status,
                             error=exc.message[:1].upper() + exc.message[1:] + ".")
    return render(request, desk.signed_in, "editor/admin_secret.html", {
        "section": "", "heading": f"New API token “{token.name}” for {editor.username}",
        "label": "API token", "secret": plain, "back": TOKENS,
        "note": "Copy it now: it is shown only once, and only a hash of it is stored. "
                "Send it as Authorization: Bearer <token>. "
                f"Scope: {token.scope}. Streams: "
                + ("all" if token.streams is None else ", ".join(token.streams))
                + ". Expires: " + ("never." if token.expires_at is None
                                   else f"{token.expires_at:%Y-%m-%d %H:%M} UTC."),
    })


def _lifetime(text: str) -> timedelta | None:
    if not text.strip():
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_duration", str(exc)) from None


@desk_endpoint(admin=True)
async def revoke_token(request: Request, desk: Desk) -> Response:
    """POST /editor/admin/tokens/{id}/revoke: the token stops working at once."""
    svc = services(request)
    async with svc.db.write() as session:
        token = await accounts.revoke_token(session, token_id=request.path_params["id"])
    await svc.live.credentials_changed()
    return redirect(request, TOKENS, f"Token {token.prefix}… revoked.")


def routes() -> list[BaseRoute]:
    """The admin pages' routes."""
    return [
        page("/editor/admin", admin_home, "GET"),
        page(EDITORS, editors_page, "GET"),
        page(EDITORS, create_editor, "POST"),
        page(EDITORS + "/{id:int}/disable", disable_editor, "POST"),
        page(EDITORS + "/{id:int}/enable", enable_editor, "POST"),
        page(EDITORS + "/{id:int}/password", reset_password, "POST"),
        page(TOKENS, tokens_page, "GET"),
        page(TOKENS, create_token, "POST"),
        page(TOKENS + "/{id:int}/revoke", revoke_token, "POST"),
    ]
