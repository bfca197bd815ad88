"""The desk's plumbing: who is signed in, forms and their CSRF tokens, flash messages, and
HTML error pages (the desk never answers with the API's JSON errors).

The desk's pages (``routes/desk.py``) and the admin pages (``routes/admin.py``) are built
from these.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..core.errors import ApiError
from ..store import sessions
from ..store.models import MAX_ID, Editor
from ..store.sessions import SignedIn
from .callers import signed_in as signed_in_editor
from .services import services

FLASH_COOKIE = "bulletin_flash"
_TITLES = {400: "Bad request", 401: "Sign in again", 403: "Not allowed", 404: "Not found",
           409: "Conflict", 413: "Too large", 415: "Bad request", 422: "Cannot save that",
           429: "Too many attempts"}

@dataclass(slots=True)
class Desk:
    """A desk request: who is signed in, and the form they sent (empty for GET)."""

    signed_in: SignedIn
    form: dict[str, str] = field(default_factory=dict)

    @property
    def editor(self) -> Editor:
        """The signed-in editor."""
        return self.signed_in.editor


Handler = Callable[[Request, Desk], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def desk_endpoint(*, admin: bool = False) -> Callable[[Handler], Endpoint]:
    """Wrap a handler: signed-in editors only (admins only with ``admin``); a POST must
    carry the CSRF token; an ApiError becomes an HTML error page."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            signed_in = await signed_in_editor(request)
            if signed_in is None:
                back = request.url.path if request.method == "GET" else _referer(request)
                if request.method == "GET" and request.url.query:
                    back += "?" + request.url.query
                return RedirectResponse(f"/editor/login?next={quote(back, safe='/')}", 303)
            if request.path_params.get("id", 0) > MAX_ID:
                return error_page(request, signed_in, 404, None, "There is nothing here.")
            if admin and signed_in.editor.role != "admin":
                return error_page(request, signed_in, 403, "Admins only",
                                  "This page is for admins. Ask an admin if you need a change.")
            data: dict[str, str] = {}
            if request.method == "POST":
                checked = await signed_form(request, signed_in)
                if isinstance(checked, Response):
                    return checked
                data = checked
            try:
                return await handler(request, Desk(signed_in, data))
            except ApiError as exc:
                return error_page(request, signed_in, exc.status, None, friendly(exc),
                                  headers=exc.headers)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def friendly(exc: ApiError) -> str:
    """An error's message as a sentence for the desk's pages."""
    if exc.code == "validation_error" and isinstance(exc.details, list) and exc.details:
        first = exc.details[0]
        return f"{str(first.get('field') or '').capitalize()}: {first.get('message')}."
    return exc.message[:1].upper() + exc.message[1:] + ("" if exc.message.endswith(".") else ".")


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body (what every desk form sends); 400 or 413 otherwise."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "This address only takes its own forms.")
    # Percent-encoding can make a post's text up to nine times longer than its characters.
    limit = 4 * services(request).settings.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", "That form was too large to accept.")
        chunks.append(chunk)
    try:
        pairs = parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=64, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_form", "That form could not be read.") from None
    # A field sent several times (the bylines' checkboxes) reads as its values joined
    # by commas, as a list typed in one field would be.
    form: dict[str, str] = {}
    for name, value in pairs:
        form[name] = f"{form[name]},{value}" if name in form else value
    return form


async def signed_form(request: Request, signed_in: SignedIn) -> dict[str, str] | Response:
    """A signed-in editor's form fields, or the error page when it is unreadable or its
    CSRF token is wrong."""
    try:
        data = await read_form(request)
    except ApiError as exc:
        return error_page(request, signed_in, exc.status, None, exc.message)
    if not sessions.csrf_ok(signed_in, data.get(sessions.CSRF_FIELD)):
        return csrf_refused(request, signed_in)
    return data


def render(request: Request, signed_in: SignedIn | None, template: str,
           context: dict[str, Any], *, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """A desk page: the signed-in editor, the CSRF token and any flash message."""
    flash = read_flash(request)
    response = request.app.state.pages.render(request, template, {
        "me": None if signed_in is None else signed_in.editor,
        "csrf": "" if signed_in is None else signed_in.csrf,
        "flash": flash, "section": "", **context,
    }, status=status, headers={"Cache-Control": "no-store", **(headers or {})})
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/editor")
    assert isinstance(response, Response)
    return response


def error_page(request: Request, signed_in: SignedIn | None, status: int, title: str | None,
               message: str, *, headers: dict[str, str] | None = None,
               back: str | None = None) -> Response:
    """An HTML error page for the desk."""
    return render(request, signed_in, "editor/error.html", {
        "title": title or _TITLES.get(status, "Something went wrong"), "message": message,
        "status": status, "back": back or _referer(request),
    }, status=status, headers=headers)


def csrf_refused(request: Request, signed_in: SignedIn | None) -> Response:
    """403 for a form without the right CSRF token (a stale page, or another site)."""
    return error_page(
        request, signed_in, 403, "This form has expired",
        "The page was open from an earlier sign-in, or the form came from another site. "
        "Nothing was changed. Go back, reload the page and try again.")


def redirect(request: Request, url: str, message: str, kind: str = "ok") -> Response:
    """A 303 to ``url`` that shows ``message`` there once."""
    response = RedirectResponse(url, 303)
    text = base64.urlsafe_b64encode(json.dumps([kind, message]).encode()).decode()
    response.set_cookie(FLASH_COOKIE, sessions.sign(services(request).settings, text),
                        max_age=120, path="/editor", httponly=True, samesite="lax",
                        secure=secure_cookies(request))
    return response


def read_flash(request: Request) -> dict[str, str] | None:
    """The flash message set by the previous response, if any."""
    raw = sessions.unsign(services(request).settings, request.cookies.get(FLASH_COOKIE))
    if raw is None:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):
        return None
    return {"kind": str(kind), "text": str(text)}


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure over https, and always in production (behind a TLS proxy)."""
    return request.url.scheme == "https" or services(request).settings.production


def safe_next(value: str | None, default: str = "/editor") -> str:
    """A local path to go to after signing in; anything else (another site) is refused."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 0x20 or c == "\\" for c in value):
        return default
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else default


def _referer(request: Request) -> str:
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return "/editor"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def client_address(request: Request) -> str:
    """The client's address, for rate limits and the admin's list of sessions."""
    return request.client.host if request.client else "unknown"


def new_key() -> str:
    """An idempotency key for a form, made when the form is rendered."""
    return str(uuid.uuid4())


def page(path: str, endpoint: Endpoint, *methods: str) -> Route:
    """A desk route: HTML, so not part of the API's OpenAPI document."""
    return Route(path, endpoint, methods=list(methods), include_in_schema=False)


def post_fields(form: dict[str, str]) -> dict[str, Any]:
    """A desk form's headline, tags and bylines as the API takes them: tags typed with
    commas (a leading # and capitals forgiven), bylines as person ids. What cannot be a
    person id stays as typed, for the API's validation to refuse with its message."""
    tags = [t.strip().lstrip("#").strip().lower() for t in form.get("tags", "").split(",")]
    people: list[Any] = []
    for raw in form.get("contributors", "").split(","):
        if raw.strip():
            number = raw.strip()
            people.append(int(number) if number.isascii() and number.isdigit()
                          and len(number) < 10 else number)
    return {"headline": form.get("headline", ""), "tags": [t for t in tags if t],
            "contributors": people}


def field_values(form: dict[str, str]) -> dict[str, Any]:
    """What a refused form's headline, tags and bylines fields show again."""
    return {"headline": form.get("headline", ""), "tags": form.get("tags", ""),
            "contributors": [int(i) for i in form.get("contributors", "").split(",")
                             if i.isascii() and i.isdigit() and len(i) < 10]}


def publish_time(form: dict[str, str]) -> str | None:
    """A desk form's time for a post to go out, as ISO 8601 for the API's validation, or
    None when none was asked for. The script sends ``publish_at`` with the editor's own
    offset; without it, the ``publish_at_local`` field (a ``datetime-local``: no zone) is
    read as UTC, unless it ends with an explicit offset or Z (docs/editor.md)."""
    sent = form.get("publish_at", "").strip()
    if sent:
        return sent
    local = form.get("publish_at_local", "").strip()
    if not local:
        return None
    has_zone = local.endswith(("Z", "z")) or (len(local) > 16 and local[-6] in "+-")
    return local if has_zone else f"{local}+00:00"
