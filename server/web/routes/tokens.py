"""The admin API for API tokens: list them, revoke one (``/api/tokens``).

Admins only: anonymous callers get a 401, other editors a 403 ``forbidden``, an admin's
token without the ``admin`` scope a 403 ``insufficient_scope`` (one bound to streams:
``stream_not_allowed``), all in the API's JSON error shape. A token's JSON never carries
its hash (nor, of course, the token: that is shown once, when it is made). Revoking is
idempotent: a second revocation keeps the first time. Once a revocation has committed,
``HubDriver.credentials_changed`` is told, so that connections already open with the token
close too, in every process.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.access import Act
from ...core.errors import ApiError, not_found
from ...store import accounts
from ...store.models import MAX_ID, ApiToken, Editor
from ...store.payloads import iso, token_access
from ..callers import caller, permit
from ..responses import json_response
from ..services import services
from ..validation import ascii_int

log = logging.getLogger("bulletin")


def token_json(token: ApiToken, editor: Editor) -> dict[str, Any]:
    """What the API shows of a token: everything but its hash."""
    return token_access(token) | {
        "editor_id": token.editor_id, "editor": editor.username,
        "created_at": iso(token.created_at), "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at), "revoked": token.revoked_at is not None,
        "expired": accounts.token_expired(token)}


async def _admin(request: Request) -> Editor:
    editor = await caller(request, required=True)
    assert editor is not None
    if editor.role != "admin":
        raise ApiError(403, "forbidden", "only admins may manage API tokens")
    permit(request, editor, Act.ADMIN)
    return editor


async def list_tokens(request: Request) -> Response:
    """GET /api/tokens?editor=<username>: every token, or one editor's, newest first."""
    await _admin(request)
    username = request.query_params.get("editor") or None
    if username is not None and not accounts.USERNAME_RE.match(username):
        raise not_found("editor", username)  # no editor can have this name
    async with services(request).db.read() as session:
        editor = None if username is None else await accounts.get_editor(
            session, username=username)
        rows = await accounts.list_all_tokens(session, editor=editor)
    return json_response({"tokens": [token_json(token, owner) for token, owner in rows]})


async def revoke_token(request: Request) -> Response:
    """DELETE /api/tokens/{id}: the token stops working, on open connections too."""
    admin = await _admin(request)
    raw: str = request.path_params["id"]
    token_id = ascii_int(raw, max_digits=10)
    if token_id is None or token_id > MAX_ID:
        raise not_found("token", raw)
    svc = services(request)
    async with svc.db.write() as session:
        token, owner = await accounts.get_token(session, token_id=token_id)
        newly = token.revoked_at is None
        await accounts.revoke_token(session, token_id=token_id)
        body = token_json(token, owner)
    if newly:
        log.info("API token %s (%s) of %s revoked by %s", token_id, token.prefix,
                 owner.username, admin.username)
        await svc.live.credentials_changed()
    return json_response(body)


def routes() -> list[BaseRoute]:
    """The token API's routes."""
    return [
        Route("/api/tokens", list_tokens, methods=["GET"]),
        Route("/api/tokens/{id}", revoke_token, methods=["DELETE"]),
    ]
