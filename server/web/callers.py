"""Who is calling: an API token, a desk session, or an anonymous reader; what they may do;
and their write limits.

Every surface that needs to know the caller (the API, the desk, the WebSocket endpoint,
the token admin API) asks here, so that one rule decides what a cookie or a token is worth.
What each role and token scope allows is ``core/access.py``; the routes ask with one line:
``writer(request, Act.X, stream=slug)`` for a write, ``permit`` / ``permit_post`` for an
editor they already have.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import col, select
from starlette.requests import HTTPConnection, Request

from ..core import access
from ..core.access import Act, Grant
from ..core.errors import ApiError, not_found
from ..store import accounts, sessions
from ..store.credentials import SCOPE_KEY, Credential
from ..store.models import ApiToken, Editor, Post, Stream, utcnow
from ..store.payloads import iso
from ..store.sessions import SignedIn
from .services import services
from .validation import future_time

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Where signed_in keeps its answer for the rest of the request.
_SIGNED_IN_KEY = "bulletin_signed_in"
# Where caller keeps the API token a request came with, and what it grants.
_TOKEN_KEY = "bulletin.token"
_GRANT_KEY = "bulletin.grant"


async def signed_in(conn: HTTPConnection) -> SignedIn | None:
    """The editor signed in to the desk with this request's session cookie (looked up once
    per request), or None."""
    if _SIGNED_IN_KEY in conn.scope:
        cached: SignedIn | None = conn.scope[_SIGNED_IN_KEY]
        return cached
    result = None
    plain = conn.cookies.get(sessions.COOKIE)
    if plain:
        svc = services(conn)
        async with svc.db.read() as session:
            found = await sessions.find(session, settings=svc.settings, plain=plain)
        if found is not None:
            row, editor = found
            if sessions.needs_touch(row):
                assert row.id is not None
                async with svc.db.write() as session:
                    await sessions.touch(session, session_id=row.id)
            result = SignedIn(editor, row, sessions.csrf_for(svc.settings, row.token_hash))
    conn.scope[_SIGNED_IN_KEY] = result
    return result



async def caller(request: HTTPConnection, *, required: bool) -> Editor | None:
    """The editor behind the request's bearer token or desk session; None for readers.

    A request that sends credentials must send good ones: a bad token is a 401 even on
    endpoints that anonymous readers may use, so that a broken integration is noticed.
    Without an Authorization header, the editor desk's session cookie counts; for a
    write it must come with the session's CSRF token in ``X-CSRF-Token``. The cookie
    counts only from the server's own pages: a request whose Origin is another site (even
    one in BULLETIN_ALLOWED_ORIGINS, which may open sockets and read public streams) is
    anonymous, so that no other page can read drafts through an editor's browser. A stale
    cookie is no credential either. What the caller authenticated with is kept in the
    scope (``credential``), for connections that must end when it is revoked.
    """
    svc = services(request)
    header = request.headers.get("authorization")
    if header is None:
        found_session = await signed_in(request) if same_origin(request) else None
        if found_session is not None:
            assert found_session.editor.id is not None
            request.scope[SCOPE_KEY] = Credential(found_session.editor.id,
                                                   session_id=found_session.session.id)
            if request.scope.get("method", "GET") not in SAFE_METHODS and not sessions.csrf_ok(
                    found_session, request.headers.get(sessions.CSRF_HEADER)):
                raise ApiError(403, "csrf_failed",
                               "a write with the session cookie needs the page's CSRF token "
                               "in X-CSRF-Token; reload the page and retry")
            return found_session.editor
        if required:
            raise ApiError(401, "authentication_required",
                           "send an API token: Authorization: Bearer <token> "
                           "(or sign in to the editor desk)",
                           headers={"WWW-Authenticate": "Bearer"})
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise ApiError(401, "invalid_authorization",
                       "the Authorization header must be 'Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client else "unknown"
    async with svc.db.read() as session:
        found = await accounts.editor_for_token(session, plain=token)
    if found is None:
        wait = svc.auth_failures.take(client, svc.clock())
        if wait:
            raise ApiError(429, "too_many_failures", "too many failed sign-ins; wait and retry",
                           headers={"Retry-After": svc.auth_failures.retry_after_header(wait)})
        raise ApiError(401, "invalid_token", "the API token is unknown or revoked",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    editor, token_row = found
    if accounts.token_expired(token_row):
        raise ApiError(401, "token_expired",
                       "the API token expired; ask an admin for a new one",
                       {"expired_at": iso(token_row.expires_at)},
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token", '
                                                    'error_description="expired"'})
    if editor.disabled:
        raise ApiError(403, "editor_disabled", "this editor account is disabled")
    assert editor.id is not None
    request.scope[SCOPE_KEY] = Credential(editor.id, token_id=token_row.id)
    request.scope[_TOKEN_KEY] = token_row
    request.scope[_GRANT_KEY] = accounts.token_grant(token_row, editor)
    last = token_row.last_used_at
    if last is None or last < utcnow() - accounts.TOKEN_TOUCH_INTERVAL:
        async with svc.db.write() as session:
            assert token_row.id is not None
            await accounts.touch_token(session, token_id=token_row.id)
    return editor


def credential(request: HTTPConnection) -> Credential | None:
    """What ``caller`` found the request authenticated with (None: anonymous)."""
    found: Credential | None = request.scope.get(SCOPE_KEY)
    return found


def same_origin(request: HTTPConnection) -> bool:
    """Whether the request comes from the server's own pages, or from no page at all.

    Browsers send Origin on WebSocket upgrades and on cross-origin requests; a page of
    the server's own origin (its Host, or BULLETIN_PUBLIC_URL) may use the cookie.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    public = services(request).settings.public_url.rstrip("/")
    if public and origin == urlsplit(public)._replace(path="", query="", fragment="").geturl():
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host")
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


def is_contributor(editor: Editor) -> bool:
    """Whether the editor's posts wait for an editor's approval (the contributor role)."""
    return editor.role == "contributor"


_DOING = {"approve": "approve or publish posts", "send_back": "send posts back",
          "schedule": "schedule posts"}


def not_for_contributors(editor: Editor, action: str) -> None:
    """403 ``forbidden_for_role`` when a contributor tries what only editors may (approve,
    send back, schedule: acts of the posts' workflow that ``core/access.py`` leaves to the
    routes, which know the post's status)."""
    if is_contributor(editor):
        raise ApiError(403, "forbidden_for_role",
                       f"a contributor may not {_DOING.get(action, action)}; an editor or "
                       "admin can", {"role": editor.role, "action": action})


def new_post_status(editor: Editor, publish_at: datetime | None) -> str:
    """The status a new post starts in, the API's and the desk's alike: a contributor's
    is ``submitted`` (they may not schedule), one with a future ``publish_at``
    ``scheduled`` (422 for a time not in the future), any other ``published``."""
    if is_contributor(editor):
        if publish_at is not None:
            not_for_contributors(editor, "schedule")
        return "submitted"
    if publish_at is not None:
        future_time(publish_at, utcnow())
        return "scheduled"
    return "published"


def api_token(request: HTTPConnection) -> ApiToken | None:
    """The API token ``caller`` found on the request (None: a desk session or a reader)."""
    found: ApiToken | None = request.scope.get(_TOKEN_KEY)
    return found


def grant(request: HTTPConnection, editor: Editor) -> Grant:
    """What ``editor``, as this request authenticated them, may do: their role, narrowed by
    the API token's scope and streams. A desk session is the editor in person: the role."""
    found: Grant | None = request.scope.get(_GRANT_KEY)
    return found if found is not None else Grant(role=editor.role)


def permit(request: HTTPConnection, editor: Editor, act: Act, *,
           stream: str | None = None) -> None:
    """Raise a 403 unless the caller may do ``act`` (on ``stream``): see ``core/access.py``."""
    access.check(grant(request, editor), act, stream=stream)


async def permit_post(request: HTTPConnection, editor: Editor, post_id: int, *,
                      edit: bool = False, pin: bool = False, delete: bool = False) -> None:
    """Raise a 403 unless the caller may change post ``post_id`` so: ``edit`` its text or
    photos (anyone's, or only their own), ``pin`` or unpin it, ``delete`` it; in its stream.
    A 404 when there is no such post."""
    async with services(request).db.read() as session:
        row = (await session.exec(
            select(Post.author_id, Stream.slug).join(Stream, col(Stream.id) == Post.stream_id)
            .where(Post.id == post_id, col(Post.deleted_at).is_(None)))).first()
    if row is None:
        raise not_found("post", post_id)
    author_id, slug = row
    if edit:
        permit(request, editor, Act.EDIT_OWN if author_id == editor.id else Act.EDIT_OTHERS,
               stream=slug)
    if pin:
        permit(request, editor, Act.PIN, stream=slug)
    if delete:
        permit(request, editor, Act.DELETE, stream=slug)


async def writer(request: Request, act: Act | None = None, *,
                 stream: str | None = None) -> Editor:
    """The editor making a write, if they may do ``act`` (on ``stream``), within their rate
    limit. Without ``act`` only a token that cannot write at all is refused here: the route
    then calls ``permit_post`` once it knows what the write changes."""
    editor = await caller(request, required=True)
    assert editor is not None
    if act is None:
        access.check_writes(grant(request, editor))
    else:
        permit(request, editor, act, stream=stream)
    limit_writes(request, editor)
    return editor


def limit_writes(request: Request, editor: Editor) -> None:
    """Spend one of the editor's writes; a 429 when they are over their rate."""
    svc = services(request)
    wait = svc.write_limiter.take(f"editor:{editor.id}", svc.clock())
    if wait:
        raise ApiError(429, "rate_limited", "too many writes; slow down and retry",
                       {"retry_after": round(wait, 3)},
                       headers={"Retry-After": svc.write_limiter.retry_after_header(wait)})
